"""``python -m llmdeploy``."""

from llmdeploy.cli import main

if __name__ == "__main__":
    main()
