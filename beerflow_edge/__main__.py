import sys

from beerflow_edge.cli import main

sys.exit(main())
