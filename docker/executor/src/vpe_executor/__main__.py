import sys

from vpe_executor.server import main

sys.exit(main())
