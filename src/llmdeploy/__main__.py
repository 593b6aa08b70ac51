"""``python -m llmdeploy``."""

from llmdeploy.entry import console

if __name__ == "__main__":
    console()
