"""``python -m xr_physcube.vae NAME [options]``: the same as ``xr-physcube train-vae``."""

import sys

from xr_physcube.cli import main

if __name__ == "__main__":
    sys.exit(main(["train-vae", *sys.argv[1:]]))
