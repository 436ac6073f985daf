"""Who may sign in at an application: the one rule the authorization page, the code
exchange and every refresh apply (README "Sign in with XenX")."""

from __future__ import annotations


def may_sign_in(user, application) -> bool:
    """An application of an organization signs in only that organization's users (an
    admin of no organization included: never); one of no organization signs in anyone.
    Inactive users and disabled applications never."""
    if not application.enabled or not user.is_active:
        return False
    if application.organization_id is None:
        return True
    return user.organization_id == application.organization_id
