from pig_lightning.cli import main

main()
