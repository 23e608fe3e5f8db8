package workspace

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
	"github.com/jackc/pgx/v5"
	"github.com/trustelem/zxcvbn"

	"github.com/orbt/orbt/store"
)

// A partner's team works in the console as members: people with an email,
// a password and a role, let in by an invitation and kept in by a
// server-side session. Invitation, reset and session tokens are stored as
// SHA-256 hashes; passwords as argon2id hashes.

// Member roles, as hosted Orbt has them.
const (
	// RoleAdmin may do everything, the team, API keys and the signing
	// secret included.
	RoleAdmin = "admin"
	// RoleTechnology manages API keys and webhooks and reads everything.
	RoleTechnology = "technology"
	// RoleFinance moves money: consumers, wallets, credits and debits,
	// campaigns, bulk payouts, transactions. No keys.
	RoleFinance = "finance"
)

// Roles lists the roles in the order the console offers them.
var Roles = []string{RoleAdmin, RoleTechnology, RoleFinance}

// Lifetimes of what lets a person in.
const (
	InviteTTL = 7 * 24 * time.Hour
	ResetTTL  = 24 * time.Hour
	// consoleTokenBytes of randomness in invitation, reset and session tokens.
	consoleTokenBytes = 32
)

// Errors of members, invitations and sessions.
var (
	ErrMemberNotFound = fmt.Errorf("member %w", store.ErrNotFound)
	ErrInviteNotFound = fmt.Errorf("invitation %w", store.ErrNotFound)
	// ErrInviteInvalid is a token that opens nothing: never issued,
	// expired, used or revoked. Which one is not told to its bearer.
	ErrInviteInvalid = errors.New("invitation expired, used, revoked or unknown")
	// ErrMemberExists is an email address a live member already signs in with.
	ErrMemberExists = errors.New("a member with this email address exists")
	// ErrInviteEmail is an address other than the one invited.
	ErrInviteEmail = errors.New("this invitation is for another email address")
	// ErrSignInFailed is a wrong email or password; which one is not told.
	ErrSignInFailed = errors.New("email or password is wrong")
	// ErrSessionEnded is a session token that lets no one in: signed out,
	// timed out, its member revoked, or never issued.
	ErrSessionEnded = errors.New("console session ended")
	// ErrLastAdmin keeps a workspace from losing its last admin.
	ErrLastAdmin = errors.New("the last admin of a workspace cannot be revoked")
)

// Member is one person of a partner's team.
type Member struct {
	ID          string     `json:"id"`
	WorkspaceID string     `json:"-"`
	Email       string     `json:"email"`
	Role        string     `json:"role"`
	CreatedAt   time.Time  `json:"createdAt"`
	RevokedAt   *time.Time `json:"revokedAt"`
}

// Invite is an invitation to join a workspace, or, with MemberID set, a
// password reset of that member.
type Invite struct {
	ID            string
	WorkspaceID   string
	WorkspaceName string
	Role          string
	// Email is the address invited; nil when whoever holds the link may
	// join (a new workspace's first admin).
	Email     *string
	MemberID  *string
	ExpiresAt time.Time
	CreatedAt time.Time
}

// IsReset tells a password reset from an invitation.
func (i Invite) IsReset() bool { return i.MemberID != nil }

// PasswordParams are the argon2id parameters of new password hashes: the
// OWASP recommendation (19 MiB, 2 passes, 1 lane). A hash records its own,
// so raising them later leaves old passwords working. Tests lower them.
var PasswordParams = argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// Password bounds.
const (
	PasswordLenMin = 12
	PasswordLenMax = 128
	// passwordScoreMin is the zxcvbn score (0 to 4) a password must reach:
	// 3 is "safely unguessable" by an online attacker; common passwords,
	// names, keyboard walks and dates score below it.
	passwordScoreMin = 3
)

// CheckPassword says what is wrong with a new password, or "": at least 12
// characters, at most 128, and not among the most common passwords nor
// otherwise easy to guess (zxcvbn's dictionaries and patterns, the
// member's own email address counted as known).
func CheckPassword(password, email string) string {
	n := utf8.RuneCountInString(password)
	switch {
	case n < PasswordLenMin:
		return fmt.Sprintf("must be at least %d characters", PasswordLenMin)
	case n > PasswordLenMax:
		return fmt.Sprintf("must be at most %d characters", PasswordLenMax)
	}
	local, domain, _ := strings.Cut(strings.ToLower(email), "@")
	if zxcvbn.PasswordStrength(password, []string{local, domain, "orbt", "console", "rewards"}).Score < passwordScoreMin {
		return "is too common or too easy to guess: try three or four unrelated words"
	}
	return ""
}

// hashPassword hashes a password with argon2id (PHC string form).
func hashPassword(password string) (string, error) {
	params := PasswordParams
	h, err := argon2id.CreateHash(password, &params)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// decoyHash is compared against when no member has the email, so a
// sign-in takes as long whether or not the address is known.
var decoyHash = sync.OnceValue(func() string {
	h, _ := hashPassword(store.Token(16))
	return h
})

const memberColumns = `m.id, m.workspace_id, m.email, m.role, m.created_at, m.revoked_at`

func scanMember(row pgx.Row) (Member, error) {
	var m Member
	err := row.Scan(&m.ID, &m.WorkspaceID, &m.Email, &m.Role, &m.CreatedAt, &m.RevokedAt)
	return m, err
}

// createInvite stores an invitation (or a reset) and returns its token.
func createInvite(ctx context.Context, q store.Querier, inv Invite, invitedBy *string, ttl time.Duration) (Invite, string, error) {
	token := store.Token(consoleTokenBytes)
	inv.ID = store.NewID("inv")
	err := q.QueryRow(ctx, `INSERT INTO console_invites (id, workspace_id, token_hash, role, email, member_id, invited_by, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, now() + $8::interval) RETURNING expires_at, created_at`,
		inv.ID, inv.WorkspaceID, hashKey(token), inv.Role, inv.Email, inv.MemberID, invitedBy, ttl).Scan(&inv.ExpiresAt, &inv.CreatedAt)
	if err != nil {
		return Invite{}, "", fmt.Errorf("create invitation: %w", err)
	}
	return inv, token, nil
}

// Invite invites email to the workspace with a role; the token goes in the
// link, shown (or mailed) once.
func (s *Store) Invite(ctx context.Context, workspaceID, email, role, invitedBy string) (Invite, string, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM console_members WHERE lower(email) = lower($1) AND revoked_at IS NULL)`,
		email).Scan(&exists); err != nil {
		return Invite{}, "", fmt.Errorf("invite: %w", err)
	}
	if exists {
		return Invite{}, "", ErrMemberExists
	}
	return createInvite(ctx, s.pool, Invite{WorkspaceID: workspaceID, Role: role, Email: &email}, &invitedBy, InviteTTL)
}

// HasAdmin reports whether the workspace has a live admin.
func (s *Store) HasAdmin(ctx context.Context, workspaceID string) (bool, error) {
	var has bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM console_members
		WHERE workspace_id = $1 AND role = 'admin' AND revoked_at IS NULL)`, workspaceID).Scan(&has)
	if err != nil {
		return false, fmt.Errorf("has admin: %w", err)
	}
	return has, nil
}

// InviteAdmin invites whoever holds the link to be an admin of the
// workspace (its first admin, or a new one an operator lets in).
func (s *Store) InviteAdmin(ctx context.Context, workspaceID string) (Invite, string, error) {
	if _, err := s.Workspace(ctx, workspaceID); err != nil {
		return Invite{}, "", err
	}
	return createInvite(ctx, s.pool, Invite{WorkspaceID: workspaceID, Role: RoleAdmin}, nil, InviteTTL)
}

// ResetLink issues a password reset for a live member of the workspace.
func (s *Store) ResetLink(ctx context.Context, workspaceID, memberID, issuedBy string) (Invite, string, error) {
	m, err := s.Member(ctx, workspaceID, memberID)
	if err != nil {
		return Invite{}, "", err
	}
	if m.RevokedAt != nil {
		return Invite{}, "", ErrMemberNotFound
	}
	return createInvite(ctx, s.pool, Invite{WorkspaceID: workspaceID, Role: m.Role, Email: &m.Email, MemberID: &m.ID}, &issuedBy, ResetTTL)
}

// PendingInvites lists the workspace's invitations (not resets) that can
// still be accepted.
func (s *Store) PendingInvites(ctx context.Context, workspaceID string) ([]Invite, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, workspace_id, role, email, expires_at, created_at FROM console_invites
		WHERE workspace_id = $1 AND member_id IS NULL AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
		ORDER BY created_at DESC LIMIT 100`, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("invitations: %w", err)
	}
	invites, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Invite, error) {
		var i Invite
		return i, r.Scan(&i.ID, &i.WorkspaceID, &i.Role, &i.Email, &i.ExpiresAt, &i.CreatedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("invitations: %w", err)
	}
	return invites, nil
}

// RevokeInvite withdraws a pending invitation of the workspace.
func (s *Store) RevokeInvite(ctx context.Context, workspaceID, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE console_invites SET revoked_at = now()
		WHERE id = $1 AND workspace_id = $2 AND used_at IS NULL AND revoked_at IS NULL`, id, workspaceID)
	if err != nil {
		return fmt.Errorf("revoke invitation: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrInviteNotFound
	}
	return nil
}

// OpenInvite returns the live invitation or reset a token names;
// ErrInviteInvalid when there is none.
func (s *Store) OpenInvite(ctx context.Context, token string) (Invite, error) {
	return openInvite(ctx, s.pool, token, "")
}

func openInvite(ctx context.Context, q store.Querier, token, lock string) (Invite, error) {
	var i Invite
	err := q.QueryRow(ctx, `SELECT i.id, i.workspace_id, w.name, i.role, i.email, i.member_id, i.expires_at, i.created_at
		FROM console_invites i JOIN workspaces w ON w.id = i.workspace_id
		WHERE i.token_hash = $1 AND i.used_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now() `+lock,
		hashKey(token)).Scan(&i.ID, &i.WorkspaceID, &i.WorkspaceName, &i.Role, &i.Email, &i.MemberID, &i.ExpiresAt, &i.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Invite{}, ErrInviteInvalid
	}
	if err != nil {
		return Invite{}, fmt.Errorf("open invitation: %w", err)
	}
	return i, nil
}

// Session is a signed-in member.
type Session struct {
	Member
	Token     string
	ExpiresAt time.Time
}

// SessionTimeouts end console sessions: Idle after the last request, Max
// after sign-in whatever the use.
type SessionTimeouts struct {
	Idle time.Duration
	Max  time.Duration
}

// AcceptInvite uses an invitation's token: it makes the member (or, for a
// reset, sets the member's new password and ends their other sessions)
// and signs them in. The caller has checked the password (CheckPassword).
func (s *Store) AcceptInvite(ctx context.Context, token, email, password string, t SessionTimeouts) (Session, error) {
	hash, err := hashPassword(password) // slow: outside the transaction
	if err != nil {
		return Session{}, err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Session{}, fmt.Errorf("accept invitation: %w", err)
	}
	defer tx.Rollback(ctx)
	// Lock as RevokeMember does, members before invitations: the member
	// a reset is for, then the invitation (checked again under its lock).
	inv, err := openInvite(ctx, tx, token, "")
	if err != nil {
		return Session{}, err
	}
	if inv.IsReset() {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM console_members WHERE id = $1 FOR UPDATE`, *inv.MemberID); err != nil {
			return Session{}, fmt.Errorf("accept invitation: %w", err)
		}
	}
	if inv, err = openInvite(ctx, tx, token, "FOR UPDATE OF i"); err != nil {
		return Session{}, err
	}
	if inv.Email != nil && !strings.EqualFold(*inv.Email, email) {
		return Session{}, ErrInviteEmail
	}
	var m Member
	if inv.IsReset() {
		m, err = scanMember(tx.QueryRow(ctx, `UPDATE console_members m SET password_hash = $3
			WHERE id = $1 AND workspace_id = $2 AND revoked_at IS NULL RETURNING `+memberColumns, *inv.MemberID, inv.WorkspaceID, hash))
		if errors.Is(err, pgx.ErrNoRows) {
			return Session{}, ErrInviteInvalid
		}
		if err == nil {
			_, err = tx.Exec(ctx, `DELETE FROM console_sessions WHERE member_id = $1`, m.ID)
		}
	} else {
		m, err = scanMember(tx.QueryRow(ctx, `INSERT INTO console_members AS m (id, workspace_id, email, role, password_hash)
			VALUES ($1, $2, $3, $4, $5) RETURNING `+memberColumns, store.NewID("mbr"), inv.WorkspaceID, email, inv.Role, hash))
		if store.IsUniqueViolation(err, "console_members_email") {
			return Session{}, ErrMemberExists
		}
	}
	if err != nil {
		return Session{}, fmt.Errorf("accept invitation: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE console_invites SET used_at = now() WHERE id = $1`, inv.ID); err != nil {
		return Session{}, fmt.Errorf("accept invitation: %w", err)
	}
	session, err := startSession(ctx, tx, m, t)
	if err != nil {
		return Session{}, err
	}
	return session, tx.Commit(ctx)
}

func startSession(ctx context.Context, q store.Querier, m Member, t SessionTimeouts) (Session, error) {
	sess := Session{Member: m, Token: store.Token(consoleTokenBytes)}
	// Sign-in is a fine moment to sweep the member's dead sessions.
	err := q.QueryRow(ctx, `WITH dead AS (DELETE FROM console_sessions WHERE member_id = $1 AND (expires_at <= now() OR last_seen_at <= now() - $4::interval))
		INSERT INTO console_sessions (token_hash, member_id, expires_at) VALUES ($2, $1, now() + $3::interval) RETURNING expires_at`,
		m.ID, hashKey(sess.Token), t.Max, t.Idle).Scan(&sess.ExpiresAt)
	if err != nil {
		return Session{}, fmt.Errorf("start session: %w", err)
	}
	return sess, nil
}

// SignIn checks a member's email and password and starts a session;
// ErrSignInFailed when either is wrong. It takes as long for an unknown
// address as for a known one.
func (s *Store) SignIn(ctx context.Context, email, password string, t SessionTimeouts) (Session, error) {
	var (
		m    Member
		hash string
	)
	err := s.pool.QueryRow(ctx, `SELECT `+memberColumns+`, m.password_hash FROM console_members m
		WHERE lower(m.email) = lower($1) AND m.revoked_at IS NULL`, email).
		Scan(&m.ID, &m.WorkspaceID, &m.Email, &m.Role, &m.CreatedAt, &m.RevokedAt, &hash)
	known := err == nil
	if errors.Is(err, pgx.ErrNoRows) {
		hash = decoyHash()
	} else if err != nil {
		return Session{}, fmt.Errorf("sign in: %w", err)
	}
	match, err := argon2id.ComparePasswordAndHash(password, hash)
	if err != nil {
		return Session{}, fmt.Errorf("sign in: %w", err)
	}
	if !match || !known {
		return Session{}, ErrSignInFailed
	}
	return startSession(ctx, s.pool, m, t)
}

// ConsoleSession returns the live session a cookie's token names, and
// marks it used; ErrSessionEnded when it has ended.
func (s *Store) ConsoleSession(ctx context.Context, token string, t SessionTimeouts) (Session, error) {
	sess := Session{Token: token}
	var seen time.Time
	err := s.pool.QueryRow(ctx, `SELECT `+memberColumns+`, s.expires_at, s.last_seen_at
		FROM console_sessions s JOIN console_members m ON m.id = s.member_id
		WHERE s.token_hash = $1 AND s.expires_at > now() AND s.last_seen_at > now() - $2::interval AND m.revoked_at IS NULL`,
		hashKey(token), t.Idle).Scan(&sess.ID, &sess.WorkspaceID, &sess.Email, &sess.Role, &sess.CreatedAt, &sess.RevokedAt, &sess.ExpiresAt, &seen)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrSessionEnded
	}
	if err != nil {
		return Session{}, fmt.Errorf("console session: %w", err)
	}
	// Idle time is counted to the minute: one write a minute per session,
	// not one per page.
	if time.Since(seen) > time.Minute || t.Idle < 2*time.Minute {
		if _, err := s.pool.Exec(ctx, `UPDATE console_sessions SET last_seen_at = now() WHERE token_hash = $1`, hashKey(token)); err != nil {
			return Session{}, fmt.Errorf("console session: %w", err)
		}
	}
	return sess, nil
}

// EndConsoleSession ends a session (sign-out).
func (s *Store) EndConsoleSession(ctx context.Context, token string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM console_sessions WHERE token_hash = $1`, hashKey(token)); err != nil {
		return fmt.Errorf("end console session: %w", err)
	}
	return nil
}

// Member returns one member of the workspace, revoked or not.
func (s *Store) Member(ctx context.Context, workspaceID, id string) (Member, error) {
	m, err := scanMember(s.pool.QueryRow(ctx, `SELECT `+memberColumns+` FROM console_members m WHERE id = $1 AND workspace_id = $2`, id, workspaceID))
	if err != nil {
		return Member{}, fmt.Errorf("member %s: %w", id, store.NoRows(err, ErrMemberNotFound))
	}
	return m, nil
}

// Members lists the workspace's members, live ones first.
func (s *Store) Members(ctx context.Context, workspaceID string) ([]Member, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+memberColumns+` FROM console_members m WHERE workspace_id = $1
		ORDER BY revoked_at IS NOT NULL, created_at LIMIT 500`, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("members: %w", err)
	}
	members, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Member, error) { return scanMember(r) })
	if err != nil {
		return nil, fmt.Errorf("members: %w", err)
	}
	return members, nil
}

// RevokeMember shuts a member out: their sessions end at once, and their
// pending resets and the invitations they issued die. The last admin
// stays. Locks: members, then invitations (as AcceptInvite).
func (s *Store) RevokeMember(ctx context.Context, workspaceID, id string) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("revoke member: %w", err)
	}
	defer tx.Rollback(ctx)
	// Lock the workspace's admins first, so two admins revoking each
	// other at once cannot leave none.
	var admins []string
	rows, err := tx.Query(ctx, `SELECT id FROM console_members WHERE workspace_id = $1 AND role = 'admin' AND revoked_at IS NULL
		ORDER BY id FOR UPDATE`, workspaceID)
	if err == nil {
		admins, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return fmt.Errorf("revoke member: %w", err)
	}
	if len(admins) == 1 && admins[0] == id {
		return ErrLastAdmin
	}
	tag, err := tx.Exec(ctx, `UPDATE console_members SET revoked_at = now() WHERE id = $1 AND workspace_id = $2 AND revoked_at IS NULL`, id, workspaceID)
	if err != nil {
		return fmt.Errorf("revoke member: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrMemberNotFound
	}
	if _, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE member_id = $1`, id); err != nil {
		return fmt.Errorf("revoke member: %w", err)
	}
	// Their own resets, and every link they issued: a member on the way
	// out must not leave themself a way back in.
	if _, err := tx.Exec(ctx, `UPDATE console_invites SET revoked_at = now()
		WHERE (member_id = $1 OR invited_by = $1) AND used_at IS NULL AND revoked_at IS NULL`, id); err != nil {
		return fmt.Errorf("revoke member: %w", err)
	}
	return tx.Commit(ctx)
}

// AuditEntry is one write a member made in the console.
type AuditEntry struct {
	ID          int64
	WorkspaceID string
	MemberID    string
	MemberEmail string
	Action      string
	ObjectID    string
	Detail      string
	CreatedAt   time.Time
}

// Record adds an entry to the workspace's audit log.
func (s *Store) Record(ctx context.Context, e AuditEntry) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO console_audit (workspace_id, member_id, action, object_id, detail)
		VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''))`, e.WorkspaceID, e.MemberID, e.Action, e.ObjectID, e.Detail)
	if err != nil {
		return fmt.Errorf("record audit entry: %w", err)
	}
	return nil
}

// AuditLog lists the workspace's audit entries, newest first, before the
// entry with id before (0: from the newest).
func (s *Store) AuditLog(ctx context.Context, workspaceID string, before int64, limit int) ([]AuditEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT a.id, a.workspace_id, a.member_id, m.email, a.action, coalesce(a.object_id, ''), coalesce(a.detail, ''), a.created_at
		FROM console_audit a JOIN console_members m ON m.id = a.member_id
		WHERE a.workspace_id = $1 AND ($2::bigint = 0 OR a.id < $2::bigint) ORDER BY a.id DESC LIMIT $3`, workspaceID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		return e, r.Scan(&e.ID, &e.WorkspaceID, &e.MemberID, &e.MemberEmail, &e.Action, &e.ObjectID, &e.Detail, &e.CreatedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return entries, nil
}
