"""The Content-Security-Policy in real Chromium (issue 10, item 11): the pages whose
behaviour comes from a script still behave, and the browser reports no violation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# Runs before any page script (Playwright's init scripts are not subject to the CSP).
_COLLECT = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__violations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});
"""


def _watch(page) -> list[str]:  # type: ignore[no-untyped-def]
    console: list[str] = []
    page.add_init_script(_COLLECT)
    page.on(
        "console",
        lambda m: console.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return console


def _violations(page) -> list[str]:  # type: ignore[no-untyped-def]
    return list(page.evaluate("window.__violations"))


def test_key_pages_work_under_the_policy_with_no_violation(live_server, browser_context):
    base, page = live_server.url, browser_context.new_page()
    console = _watch(page)

    # The error summary takes focus (this was the inline script in base.html).
    response = page.goto(f"{base}/sign-up")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#error-summary")).to_be_focused()
    found = _violations(page)

    # "Go back" on an error page goes back (this was a javascript: link).
    page.goto(f"{base}/sign-in")
    page.goto(f"{base}/no-such-page")
    page.get_by_role("link", name="Go back").click()
    expect(page).to_have_url(f"{base}/sign-in")
    found += _violations(page)

    # The API reference starts Swagger UI from a file, not an inline script.
    page.goto(f"{base}/docs")
    expect(page.get_by_text("/api/v1/staff-session").first).to_be_visible(timeout=15000)
    found += _violations(page)

    assert found == [] and console == []


def test_the_policy_really_blocks_an_inline_script(live_server, browser_context):
    """The check above means something: an inline script on a page is blocked and seen."""
    base, page = live_server.url, browser_context.new_page()
    console = _watch(page)
    page.goto(f"{base}/sign-in")
    page.evaluate(
        """() => {
          const s = document.createElement('script');
          s.textContent = 'window.__ran = true';
          document.body.appendChild(s);
        }"""
    )
    page.wait_for_function("window.__violations.length > 0")
    assert page.evaluate("window.__ran === undefined")
    assert any("script-src" in v for v in _violations(page))
    assert console
