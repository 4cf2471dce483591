enum CommandLineSupport {}
