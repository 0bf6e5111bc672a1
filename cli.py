"""Thin entry point: ``python cli.py fit --config conf/demo.yaml`` equals ``pig-lightning fit ...``."""

from pig_lightning.cli import main

if __name__ == "__main__":
    main()
