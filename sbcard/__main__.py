from sbcard.cli.main import main

main()
