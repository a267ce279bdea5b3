"""Local fakes of the providers calpool cannot reach from here (Google
Calendar, Microsoft Graph): HTTP servers on loopback that answer what the
provider documents, each with tests of its own, driven through the
provider's real client library."""
