import sys

from rgbify.cli import main

sys.exit(main())
