import sys

from oneapi.cli import main

sys.exit(main())
