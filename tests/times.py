"""The fixed instants the tests share.

The test clock starts on Thursday 26 November 2026 at 12:00 in New York
(``NOON``); the persona facility is in America/New_York, so Friday 09:00 there
is the first time the default 12-hour notice lets a family book.
"""

from __future__ import annotations

import datetime as dt

# Thursday 26 November 2026, 12:00 in New York: where the test clock starts.
NOON = dt.datetime(2026, 11, 26, 17, 0, tzinfo=dt.UTC)
# Friday 27 November 2026, 09:00 in New York: the visit most tests book.
FRIDAY_9AM = dt.datetime(2026, 11, 27, 14, 0, tzinfo=dt.UTC)
