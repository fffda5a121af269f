"""The sans-I/O core: the Plum protocol as plain functions and state machines.

Nothing in this package performs I/O, imports anyio, asyncio, trio or redis, opens an httpx
client, or reads a clock: time arrives as an argument. Every rule here is unit-tested with
plain synchronous calls.
"""
