from mlv.cli import main

main()
