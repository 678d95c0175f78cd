import sys

from vistack.cli import main

sys.exit(main())
