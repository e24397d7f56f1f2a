from trio_tcp._cli import main

if __name__ == "__main__":
    main()
