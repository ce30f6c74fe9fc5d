"""``python -m xr_physcube.vae pixel|temporal [--seed 0] [--out PATH]``: rebuild a shipped
VAE with :func:`xr_physcube.vae.train.pretrain`."""

from xr_physcube.vae.train import main

if __name__ == "__main__":
    main()
