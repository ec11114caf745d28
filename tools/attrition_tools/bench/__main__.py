import sys

from attrition_tools.bench.run import main

sys.exit(main())
