"""``python -m plumvoice_async._cli``: the ``plumvoice`` command without its script."""

import sys

from .main import main

sys.exit(main())
