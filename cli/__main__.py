from usagemeter.app import main

main()
