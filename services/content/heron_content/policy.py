"""Who may see and change which items, beyond the per-method permission.

- Anonymous callers see published items only, whatever the `public` role holds.
- `content.read` sees every item; `content.read:own` sees published items and its own drafts.
- `content.update|delete` change any item; with `:own`, only items the principal created.
- Statuses go draft → review → published → archived. Anyone who may change an item may move it
  between draft and review (an author asks for review); publishing, unpublishing (a status
  change to or from `published`) and archiving need `content.publish`.
- Changing or deleting an item that is live (published) needs `content.publish` too: what
  anonymous readers see is an editor's decision. Until revisions exist (where an author's
  change becomes a draft revision for review), such a change is refused with 403.
An item the caller may not see is reported as not found, so its existence does not leak.
"""

from __future__ import annotations

from heron_common.errors import DomainError, Unauthenticated
from heron_common.security.authz import deny
from heron_common.security.permissions import Principal

from heron_content.repository import Item, ItemRef

PUBLISHED = "published"
ARCHIVED = "archived"
# Statuses whose items readers see (or will, once scheduling exists).
LIVE_STATUSES = frozenset({PUBLISHED, "scheduled"})


def sees_drafts(principal: Principal) -> bool:
    """Whether any draft may be visible to `principal`: anonymous callers never see drafts,
    whatever the public role holds."""
    return not principal.anonymous and principal.may("content.read")


def can_see(principal: Principal | None, item: Item | ItemRef) -> bool:
    return item.status == PUBLISHED or sees_unpublished(principal, item.author_id)


def sees_unpublished(principal: Principal | None, author_id: str) -> bool:
    """Whether `principal` may see what an item of `author_id` is while not published (its
    drafts, and the revisions made while it was one)."""
    if principal is None:
        return True
    return sees_drafts(principal) and principal.may_on("content.read", author_id)


def list_scope(principal: Principal | None, status: str) -> tuple[str, str | None]:
    """(status filter, author whose drafts are also visible) for a listing.

    The author is None when every item (of the status) is visible; "" when only published
    ones are.
    """
    if principal is None or (principal.may_all("content.read") and not principal.anonymous):
        return status, None
    if principal.anonymous or not sees_drafts(principal):
        if status and status != PUBLISHED:
            raise Unauthenticated("Sign in to see items that are not published.")
        return PUBLISHED, None
    return status, principal.user_id


def reader_scope(principal: Principal | None) -> tuple[bool, str | None]:
    """(sees every item, the author whose unpublished items it sees besides the published
    ones): what a query may reach, the items its references lead to included."""
    if principal is None or (principal.may_all("content.read") and not principal.anonymous):
        return True, None
    if principal.anonymous or not sees_drafts(principal):
        return False, None
    return False, principal.user_id


def check_create(principal: Principal | None, status: str) -> None:
    if principal is None or principal.may("content.publish"):
        return
    if status == PUBLISHED:
        raise _denied(principal, "publishing needs the `content.publish` permission.")
    if status == ARCHIVED:
        raise _denied(principal, "archiving needs the `content.publish` permission.")


def check_change(
    principal: Principal | None,
    item: Item,
    permission: str,
    new_status: str | None = None,
) -> None:
    """Raise unless the principal may apply `permission` (update/delete) to the item."""
    if principal is None:
        return
    if not principal.may_on(permission, item.author_id):
        raise _denied(principal, f"this item needs the `{permission}` permission.")
    publishing = new_status is not None and (new_status == PUBLISHED) != (item.status == PUBLISHED)
    if publishing and not principal.may_on("content.publish", item.author_id):
        raise _denied(principal, "publishing or unpublishing needs `content.publish`.")
    archiving = new_status is not None and (new_status == ARCHIVED) != (item.status == ARCHIVED)
    if archiving and not principal.may_on("content.publish", item.author_id):
        raise _denied(
            principal, "archiving, or bringing back from the archive, needs `content.publish`."
        )
    if item.status in LIVE_STATUSES and not principal.may_on("content.publish", item.author_id):
        verb = "deleting" if permission == "content.delete" else "changing"
        raise _denied(
            principal,
            f"this item is {item.status}; {verb} it needs the `content.publish` permission. "
            "Ask an editor to unpublish it first, or to make the change.",
        )


def check_schedule(principal: Principal | None, item: Item) -> None:
    """Scheduling an item's publishing is publishing it: an editor's decision."""
    if principal is None:
        return
    if not principal.may_on("content.update", item.author_id) or not principal.may_on(
        "content.publish", item.author_id
    ):
        raise _denied(
            principal, "scheduling publishing needs `content.update` and `content.publish`."
        )


def may_still_publish(item: Item, role_permissions: frozenset[str]) -> bool:
    """Whether the role that scheduled the item's change may, as things are now, make it."""
    scheduler = Principal(item.scheduled_by, item.scheduled_role, role_permissions)
    return bool(item.scheduled_by) and scheduler.may_on("content.publish", item.author_id)


def _denied(principal: Principal, message: str) -> DomainError:
    return deny(principal, message)
