from aggregator.cli import program

program()
