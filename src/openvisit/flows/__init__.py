"""Operations that span domains: they call the domains' services, never the reverse."""
