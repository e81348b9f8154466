import sys

from cnnkeras.cli import main

sys.exit(main())
