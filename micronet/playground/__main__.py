import sys

from micronet.playground.cli import main

sys.exit(main())
