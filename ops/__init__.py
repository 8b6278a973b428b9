"""The operator console: ``python -m ops <command>`` against the deployed connector or the local
stack of ``make run``. Development and operations only; never deployed with the Functions app
(``.funcignore``)."""
