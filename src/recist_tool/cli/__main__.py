import sys

from recist_tool.cli import main

sys.exit(main())
