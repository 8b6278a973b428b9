"""A local stand-in for a Dynamics 365 form and grid that host the Automation Programs dialog."""

from devtools.crm_page.server import CrmPage, PageRecord

__all__ = ["CrmPage", "PageRecord"]
