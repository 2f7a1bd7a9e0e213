//! The access policy: who may do what to which record, decided in one place.
//!
//! Handlers never compare roles themselves. They ask [`authorize`] about one record (or a
//! create), and [`list_scope`] for the SQL-side restriction of a list, so the same rules
//! apply to reads by id and to lists.

use crate::error::{Denial, Error};
use uuid::Uuid;

/// A role, in increasing order of power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// No credentials.
    Guest,
    /// A signed-in user.
    User,
    /// Everything, including purge and restore.
    Admin,
}

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    role: Role,
    user_id: Option<Uuid>,
}

impl Principal {
    /// The anonymous caller.
    pub fn guest() -> Self {
        Self {
            role: Role::Guest,
            user_id: None,
        }
    }

    /// A signed-in user or admin.
    pub fn user(user_id: Uuid, role: Role) -> Self {
        Self {
            role,
            user_id: Some(user_id),
        }
    }

    /// The local administrator: every request acts as it while no authentication is
    /// configured. Records it creates have no owner.
    pub fn local_admin() -> Self {
        Self {
            role: Role::Admin,
            user_id: None,
        }
    }

    /// The principal's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The user id, if the principal is a stored user.
    pub fn user_id(&self) -> Option<Uuid> {
        self.user_id
    }

    /// The fields this principal sees: admins see `admin_only` fields, nobody else does.
    pub fn field_access(&self) -> FieldAccess {
        if self.role == Role::Admin {
            FieldAccess::All
        } else {
            FieldAccess::Public
        }
    }
}

/// Which records a signed-in user may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadScope {
    /// Every record (the default).
    #[default]
    All,
    /// Only records they own; guests then read nothing.
    Own,
}

/// Per-model overrides of the default policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPolicy {
    /// Guests may read (default true; ignored when `user_read` is `Own`).
    pub guest_read: bool,
    /// Which records users may read.
    pub user_read: ReadScope,
    /// Answer 404 rather than 403 when the caller may not even read the record, so its
    /// existence does not leak (default true).
    pub hide_forbidden: bool,
}

impl Default for ModelPolicy {
    fn default() -> Self {
        Self {
            guest_read: true,
            user_read: ReadScope::All,
            hide_forbidden: true,
        }
    }
}

/// Which declared fields a caller sees and may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldAccess {
    /// Every field (admins).
    All,
    /// Every field but those declared `admin_only`.
    Public,
}

/// What a request wants to do to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read one record or list.
    Read,
    /// Create a record.
    Create,
    /// PUT or PATCH.
    Update,
    /// Soft delete.
    Delete,
    /// Hard delete (admin only).
    Purge,
    /// Undo a soft delete (admin only).
    Restore,
}

/// The rows a list may return for a principal; applied in the query, never after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListScope {
    /// Every row.
    All,
    /// Only rows owned by this user.
    OwnedBy(Uuid),
}

/// Decides whether `who` may do `action`; `owner` is the record's `owner_id` when the action
/// is on an existing record (`None` for creates).
pub fn authorize(
    who: &Principal,
    policy: &ModelPolicy,
    action: Action,
    owner: Option<Option<Uuid>>,
) -> Result<(), Error> {
    let deny = |d| Err(Error::Denied(d));
    let owns = matches!(owner, Some(Some(o)) if Some(o) == who.user_id);
    // Refusing an action on a record the caller cannot even read must not confirm that the
    // record exists.
    let hidden = if policy.hide_forbidden {
        Denial::Hidden
    } else {
        Denial::Forbidden
    };
    let may_read = policy.user_read == ReadScope::All || owner.is_none() || owns;
    match (who.role, action) {
        (Role::Admin, _) => Ok(()),
        (Role::Guest, Action::Read) if guests_read(policy) => Ok(()),
        (Role::Guest, _) => deny(Denial::Unauthenticated),
        (Role::User, Action::Create) => Ok(()),
        (Role::User, _) if !may_read => deny(hidden),
        (Role::User, Action::Read) => Ok(()),
        (Role::User, Action::Purge | Action::Restore) => deny(Denial::Forbidden),
        (Role::User, Action::Update | Action::Delete) if owns => Ok(()),
        (Role::User, Action::Update | Action::Delete) => deny(Denial::Forbidden),
    }
}

fn guests_read(policy: &ModelPolicy) -> bool {
    policy.guest_read && policy.user_read == ReadScope::All
}

/// The part of the decision that needs no record: whether `who` may attempt `action` on
/// this model at all. Handlers ask it before looking anything up or validating a body, so a
/// guest's write is a 401 whether or not the record exists or the body is valid.
pub fn precheck(who: &Principal, policy: &ModelPolicy, action: Action) -> Result<(), Error> {
    match (who.role, action) {
        (Role::Admin, _) => Ok(()),
        (Role::Guest, Action::Read) if guests_read(policy) => Ok(()),
        (Role::Guest, _) => Err(Error::Denied(Denial::Unauthenticated)),
        // Where users cannot read others' records, the refusal must not differ from "no such
        // record" either.
        (Role::User, Action::Purge | Action::Restore)
            if policy.user_read == ReadScope::Own && policy.hide_forbidden =>
        {
            Err(Error::Denied(Denial::Hidden))
        }
        (Role::User, Action::Purge | Action::Restore) => Err(Error::Denied(Denial::Forbidden)),
        (Role::User, _) => Ok(()),
    }
}

/// The rows a list returns for `who`, or the denial if it may not list at all.
pub fn list_scope(who: &Principal, policy: &ModelPolicy) -> Result<ListScope, Error> {
    match (who.role, policy.user_read, who.user_id) {
        (Role::Admin, _, _) => Ok(ListScope::All),
        (Role::Guest, _, _) if guests_read(policy) => Ok(ListScope::All),
        (Role::Guest, _, _) | (Role::User, _, None) => Err(Error::Denied(Denial::Unauthenticated)),
        (Role::User, ReadScope::All, Some(_)) => Ok(ListScope::All),
        (Role::User, ReadScope::Own, Some(id)) => Ok(ListScope::OwnedBy(id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u128) -> Principal {
        Principal::user(Uuid::from_u128(n), Role::User)
    }

    #[test]
    fn principals_carry_their_role_and_user() {
        let id = Uuid::from_u128(7);
        let p = Principal::user(id, Role::User);
        assert_eq!((p.role(), p.user_id()), (Role::User, Some(id)));
        let p = Principal::user(id, Role::Admin);
        assert_eq!((p.role(), p.user_id()), (Role::Admin, Some(id)));
        let g = Principal::guest();
        assert_eq!((g.role(), g.user_id()), (Role::Guest, None));
        let local = Principal::local_admin();
        assert_eq!((local.role(), local.user_id()), (Role::Admin, None));
        assert_eq!(local.field_access(), FieldAccess::All);
        assert_eq!(user(1).field_access(), FieldAccess::Public);
        assert_eq!(g.field_access(), FieldAccess::Public);
    }

    #[test]
    fn admin_may_do_everything() {
        let p = ModelPolicy::default();
        for a in [
            Action::Read,
            Action::Create,
            Action::Update,
            Action::Delete,
            Action::Purge,
            Action::Restore,
        ] {
            assert_eq!(
                authorize(&Principal::local_admin(), &p, a, Some(None)),
                Ok(())
            );
        }
    }

    #[test]
    fn guest_reads_only_and_only_where_allowed() {
        let open = ModelPolicy::default();
        let closed = ModelPolicy {
            guest_read: false,
            ..ModelPolicy::default()
        };
        let g = Principal::guest();
        assert_eq!(authorize(&g, &open, Action::Read, None), Ok(()));
        assert_eq!(list_scope(&g, &open), Ok(ListScope::All));
        assert_eq!(
            authorize(&g, &closed, Action::Read, None),
            Err(Error::Denied(Denial::Unauthenticated))
        );
        assert!(list_scope(&g, &closed).is_err());
        for a in [
            Action::Create,
            Action::Update,
            Action::Delete,
            Action::Purge,
            Action::Restore,
        ] {
            assert_eq!(
                authorize(&g, &open, a, Some(None)),
                Err(Error::Denied(Denial::Unauthenticated))
            );
        }
    }

    #[test]
    fn users_write_only_their_own() {
        let p = ModelPolicy::default();
        let (a, b) = (user(1), user(2));
        let owned_by_a = Some(Some(Uuid::from_u128(1)));
        assert_eq!(authorize(&a, &p, Action::Update, owned_by_a), Ok(()));
        assert_eq!(authorize(&a, &p, Action::Delete, owned_by_a), Ok(()));
        assert_eq!(
            authorize(&b, &p, Action::Update, owned_by_a),
            Err(Error::Denied(Denial::Forbidden))
        );
        assert_eq!(
            authorize(&b, &p, Action::Delete, owned_by_a),
            Err(Error::Denied(Denial::Forbidden))
        );
        assert_eq!(
            authorize(&a, &p, Action::Update, Some(None)),
            Err(Error::Denied(Denial::Forbidden))
        );
        assert_eq!(
            authorize(&a, &p, Action::Purge, owned_by_a),
            Err(Error::Denied(Denial::Forbidden))
        );
        assert_eq!(
            authorize(&a, &p, Action::Restore, owned_by_a),
            Err(Error::Denied(Denial::Forbidden))
        );
        assert_eq!(authorize(&b, &p, Action::Read, owned_by_a), Ok(()));
        assert_eq!(authorize(&b, &p, Action::Create, None), Ok(()));
        assert_eq!(list_scope(&b, &p), Ok(ListScope::All));
    }

    #[test]
    fn users_reading_only_their_own() {
        let own = ModelPolicy {
            user_read: ReadScope::Own,
            ..ModelPolicy::default()
        };
        let (a, b) = (user(1), user(2));
        let owned_by_a = Some(Some(Uuid::from_u128(1)));
        assert_eq!(authorize(&a, &own, Action::Read, owned_by_a), Ok(()));
        assert_eq!(
            list_scope(&a, &own),
            Ok(ListScope::OwnedBy(Uuid::from_u128(1)))
        );
        for action in [
            Action::Read,
            Action::Update,
            Action::Delete,
            Action::Purge,
            Action::Restore,
        ] {
            assert_eq!(
                authorize(&b, &own, action, owned_by_a),
                Err(Error::Denied(Denial::Hidden)),
                "{action:?}"
            );
        }
        let loud = ModelPolicy {
            hide_forbidden: false,
            ..own.clone()
        };
        assert_eq!(
            authorize(&b, &loud, Action::Read, owned_by_a),
            Err(Error::Denied(Denial::Forbidden))
        );
        // Guests cannot read a model whose users only read their own records.
        assert_eq!(
            authorize(&Principal::guest(), &own, Action::Read, owned_by_a),
            Err(Error::Denied(Denial::Unauthenticated))
        );
        assert!(list_scope(&Principal::guest(), &own).is_err());
        assert_eq!(
            list_scope(&Principal::local_admin(), &own),
            Ok(ListScope::All)
        );
    }

    #[test]
    fn precheck_needs_no_record() {
        let open = ModelPolicy::default();
        let own = ModelPolicy {
            user_read: ReadScope::Own,
            ..ModelPolicy::default()
        };
        let g = Principal::guest();
        assert_eq!(precheck(&g, &open, Action::Read), Ok(()));
        for a in [
            Action::Create,
            Action::Update,
            Action::Delete,
            Action::Purge,
            Action::Restore,
        ] {
            assert_eq!(
                precheck(&g, &open, a),
                Err(Error::Denied(Denial::Unauthenticated)),
                "{a:?}"
            );
        }
        assert_eq!(
            precheck(&g, &own, Action::Read),
            Err(Error::Denied(Denial::Unauthenticated))
        );
        let u = user(1);
        assert_eq!(precheck(&u, &open, Action::Update), Ok(()));
        assert_eq!(
            precheck(&u, &open, Action::Purge),
            Err(Error::Denied(Denial::Forbidden))
        );
        assert_eq!(
            precheck(&u, &own, Action::Restore),
            Err(Error::Denied(Denial::Hidden))
        );
        assert_eq!(
            precheck(&Principal::local_admin(), &own, Action::Purge),
            Ok(())
        );
    }

    #[test]
    fn field_access_follows_role() {
        assert_eq!(Principal::local_admin().field_access(), FieldAccess::All);
        assert_eq!(user(1).field_access(), FieldAccess::Public);
        assert_eq!(Principal::guest().field_access(), FieldAccess::Public);
    }
}
