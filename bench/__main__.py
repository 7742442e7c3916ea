"""``python -m bench``: the iperf3 throughput benchmark (bench/run.py)."""

import sys

from bench.run import main

sys.exit(main())
