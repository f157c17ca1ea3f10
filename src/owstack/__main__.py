from owstack.cli import main

main()
