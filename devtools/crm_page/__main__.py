import sys

from devtools.crm_page.server import main

sys.exit(main())
