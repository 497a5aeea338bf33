from usagemeter.cli.app import main

main()
