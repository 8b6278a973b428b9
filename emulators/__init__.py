"""Local HTTPS emulators of Entra ID, the Dataverse Web API and the dotdigital API.

A development and test tool: never deployed with the function app. See README.md.
"""
