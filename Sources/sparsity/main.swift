import SparsityCLI

SparsityCommand.runAndExit()
