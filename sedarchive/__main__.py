import sys

from sedarchive.cli import main

sys.exit(main())
