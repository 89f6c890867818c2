/**
 * Personal settings (every user): profile and display name, password, the access token for
 * `/api` (made anew and shown once), the invitation link, e-mail / GitHub / OIDC / Lark / WeChat
 * bindings (each when the operator enabled it), and deleting one's own account.
 */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { api } from "@/api/client";
import { ROLE, type User } from "@/api/types";
import { useAuth } from "@/auth";
import { useConfirm } from "@/components/Modal";
import { toast } from "@/components/Toast";
import { Turnstile, useTurnstileEnabled } from "@/components/Turnstile";
import { Badge, Button, Card, CopyButton, Field } from "@/components/ui";
import { useI18n, type MessageKey } from "@/i18n";
import { serverAddress } from "@/lib/chatLinks";
import { formatNumber, formatQuota } from "@/lib/format";
import { startOAuth, type Provider } from "@/pages/auth/oauth";
import styles from "./settings.module.css";

const RESEND_SECONDS = 30;

function ProfileCard({ user }: { user: User }) {
  const { t } = useI18n();
  const { status, refreshUser } = useAuth();
  const [displayName, setDisplayName] = useState(user.display_name);
  const [busy, setBusy] = useState(false);
  useEffect(() => setDisplayName(user.display_name), [user.display_name]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!displayName.trim()) {
      toast.error(t("personal.displayNameEmpty"));
      return;
    }
    setBusy(true);
    try {
      await api.put("/user/self", { display_name: displayName.trim() });
      toast.success(t("common.saved"));
      await refreshUser();
    } catch {
      // toast shown by the client
    } finally {
      setBusy(false);
    }
  };

  const role: MessageKey = user.role >= ROLE.ROOT ? "role.root" : user.role >= ROLE.ADMIN ? "role.admin" : "role.common";
  return (
    <Card title={t("personal.profile")}>
      <div className="stack">
        <dl className={styles.dl}>
          <dt>{t("auth.username")}</dt>
          <dd data-testid="personal-username">{user.username}</dd>
          <dt>{t("users.role")}</dt>
          <dd>
            <Badge tone="blue">{t(role)}</Badge>
          </dd>
          <dt>{t("users.group")}</dt>
          <dd>{user.group}</dd>
          <dt>{t("users.remaining")}</dt>
          <dd>{formatQuota(user.quota, status)}</dd>
          <dt>{t("users.used")}</dt>
          <dd>{formatQuota(user.used_quota, status)}</dd>
          <dt>{t("users.requests")}</dt>
          <dd>{formatNumber(user.request_count)}</dd>
        </dl>
        <form className="stack" onSubmit={submit}>
          <Field label={t("users.displayName")} className={styles.wide}>
            <div className={styles.row}>
              <input name="display_name" maxLength={20} value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
              <Button type="submit" busy={busy} data-testid="personal-save-name">
                {t("common.save")}
              </Button>
            </div>
          </Field>
        </form>
      </div>
    </Card>
  );
}

function PasswordCard() {
  const { t } = useI18n();
  const { refreshUser } = useAuth();
  const [password, setPassword] = useState("");
  const [password2, setPassword2] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (password.length < 8 || password.length > 20) {
      toast.error(t("auth.passwordLength"));
      return;
    }
    if (password !== password2) {
      toast.error(t("auth.passwordMismatch"));
      return;
    }
    setBusy(true);
    try {
      await api.put("/user/self", { password });
      toast.success(t("auth.passwordChanged"));
      setPassword("");
      setPassword2("");
      await refreshUser();
    } catch {
      // toast shown by the client
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card title={t("personal.password")}>
      <form className="stack" onSubmit={submit} autoComplete="off">
        <div className="grid-2">
          <Field label={t("auth.newPassword")} hint={t("auth.passwordLength")}>
            <input name="new-password" type="password" autoComplete="new-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
          </Field>
          <Field label={t("auth.passwordAgain")}>
            <input name="new-password-again" type="password" autoComplete="new-password" required value={password2} onChange={(e) => setPassword2(e.target.value)} />
          </Field>
        </div>
        <div className="btn-row">
          <Button type="submit" variant="primary" busy={busy} data-testid="personal-save-password">
            {t("personal.changePassword")}
          </Button>
        </div>
      </form>
    </Card>
  );
}

function AccessCard() {
  const { t } = useI18n();
  const { status } = useAuth();
  const [token, setToken] = useState<string | null>(null);
  const [aff, setAff] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [confirm, confirmDialog] = useConfirm();

  const generate = async () => {
    if (token === null && !(await confirm(t("personal.tokenConfirm")))) return;
    setBusy("token");
    try {
      setToken(await api.get<string>("/user/token"));
      toast.success(t("personal.tokenMade"));
    } catch {
      // toast shown by the client
    } finally {
      setBusy(null);
    }
  };

  const invite = async () => {
    setBusy("aff");
    try {
      const code = await api.get<string>("/user/aff");
      setAff(`${serverAddress(status)}/register?aff=${encodeURIComponent(code)}`);
    } catch {
      // toast shown by the client
    } finally {
      setBusy(null);
    }
  };

  return (
    <Card title={t("personal.access")}>
      <div className="stack">
        <div className="stack">
          <p className={`muted small ${styles.note}`}>{t("personal.tokenHint")}</p>
          <div className="btn-row">
            <Button busy={busy === "token"} onClick={() => void generate()} data-testid="personal-token">
              {token === null ? t("personal.tokenMake") : t("personal.tokenRemake")}
            </Button>
            {token !== null ? <CopyButton text={token} testId="personal-token-copy" /> : null}
          </div>
          {token !== null ? (
            <code className={styles.token} data-testid="personal-token-value">
              {token}
            </code>
          ) : null}
        </div>
        <div className="stack">
          <p className={`muted small ${styles.note}`}>{t("personal.affHint")}</p>
          <div className="btn-row">
            <Button busy={busy === "aff"} onClick={() => void invite()} data-testid="personal-aff">
              {t("personal.affGet")}
            </Button>
            {aff !== null ? <CopyButton text={aff} testId="personal-aff-copy" /> : null}
          </div>
          {aff !== null ? (
            <code className={styles.token} data-testid="personal-aff-link">
              {aff}
            </code>
          ) : null}
        </div>
      </div>
      {confirmDialog}
    </Card>
  );
}

function EmailBinding({ user }: { user: User }) {
  const { t } = useI18n();
  const { refreshUser } = useAuth();
  const [email, setEmail] = useState("");
  const [code, setCode] = useState("");
  const [countdown, setCountdown] = useState(0);
  const [busy, setBusy] = useState(false);
  const [turnstileToken, setTurnstileToken] = useState("");
  const turnstile = useTurnstileEnabled();
  const onToken = useCallback((value: string) => setTurnstileToken(value), []);

  useEffect(() => {
    if (countdown <= 0) return;
    const timer = window.setTimeout(() => setCountdown((value) => value - 1), 1000);
    return () => window.clearTimeout(timer);
  }, [countdown]);

  const send = async () => {
    if (turnstile && !turnstileToken) {
      toast.info(t("auth.turnstileWait"));
      return;
    }
    try {
      await api.get("/verification", { query: { email: email.trim(), turnstile: turnstileToken } });
      toast.success(t("auth.codeSent"));
      setCountdown(RESEND_SECONDS);
    } catch {
      // toast shown by the client
    }
  };

  const bind = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    try {
      await api.get("/oauth/email/bind", { query: { email: email.trim(), code: code.trim() } });
      toast.success(t("auth.oauthBound"));
      setEmail("");
      setCode("");
      await refreshUser();
    } catch {
      // toast shown by the client
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className={styles.binding} onSubmit={bind}>
      <h3>{t("auth.email")}</h3>
      <span className="small">{user.email ? t("personal.boundTo", { id: user.email }) : t("personal.notBound")}</span>
      <div className={styles.row}>
        <input name="bind-email" type="email" placeholder={t("personal.newEmail")} value={email} onChange={(e) => setEmail(e.target.value)} required />
        <Button small onClick={() => void send()} disabled={countdown > 0 || !email.trim()}>
          {countdown > 0 ? t("auth.resendIn", { seconds: countdown }) : t("auth.sendCode")}
        </Button>
      </div>
      <div className={styles.row}>
        <input name="bind-email-code" placeholder={t("auth.verificationCode")} value={code} onChange={(e) => setCode(e.target.value)} required />
        <Button small type="submit" busy={busy}>
          {t("personal.bind")}
        </Button>
      </div>
      <Turnstile onToken={onToken} />
    </form>
  );
}

function OAuthBinding({ provider, title, bound }: { provider: Provider; title: string; bound: string }) {
  const { t } = useI18n();
  const { status } = useAuth();
  const [busy, setBusy] = useState(false);
  return (
    <div className={styles.binding}>
      <h3>{title}</h3>
      <span className="small">{bound ? t("personal.boundTo", { id: bound }) : t("personal.notBound")}</span>
      <div className="btn-row">
        <Button
          small
          busy={busy}
          data-testid={`personal-bind-${provider}`}
          onClick={async () => {
            if (!status) return;
            setBusy(true);
            try {
              await startOAuth(provider, status);
            } catch {
              setBusy(false);
            }
          }}
        >
          {bound ? t("personal.rebind") : t("personal.bind")}
        </Button>
      </div>
    </div>
  );
}

function WeChatBinding({ user }: { user: User }) {
  const { t } = useI18n();
  const { status, refreshUser } = useAuth();
  const [code, setCode] = useState("");
  const [busy, setBusy] = useState(false);
  const bind = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    try {
      await api.get("/oauth/wechat/bind", { query: { code: code.trim() } });
      toast.success(t("auth.oauthBound"));
      setCode("");
      await refreshUser();
    } catch {
      // toast shown by the client
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className={styles.binding} onSubmit={bind}>
      <h3>{t("personal.wechat")}</h3>
      <span className="small">{user.wechat_id ? t("personal.boundTo", { id: user.wechat_id }) : t("personal.notBound")}</span>
      {status?.wechat_qrcode ? <img className={styles.qr} src={status.wechat_qrcode} alt={t("personal.wechatQr")} /> : null}
      <span className="muted small">{t("auth.wechatHint")}</span>
      <div className={styles.row}>
        <input name="wechat-code" placeholder={t("auth.verificationCode")} value={code} onChange={(e) => setCode(e.target.value)} required />
        <Button small type="submit" busy={busy}>
          {t("personal.bind")}
        </Button>
      </div>
    </form>
  );
}

function BindingsCard({ user }: { user: User }) {
  const { t } = useI18n();
  const { status } = useAuth();
  return (
    <Card title={t("personal.bindings")}>
      <div className={styles.bindings}>
        <EmailBinding user={user} />
        {status?.github_oauth ? <OAuthBinding provider="github" title="GitHub" bound={user.github_id} /> : null}
        {status?.oidc ? <OAuthBinding provider="oidc" title="OIDC" bound={user.oidc_id} /> : null}
        {status?.lark_client_id ? <OAuthBinding provider="lark" title={t("personal.lark")} bound={user.lark_id} /> : null}
        {status?.wechat_login ? <WeChatBinding user={user} /> : null}
      </div>
    </Card>
  );
}

function DeleteAccountCard({ user }: { user: User }) {
  const { t } = useI18n();
  const { logout } = useAuth();
  const navigate = useNavigate();
  const [typed, setTyped] = useState("");
  const [confirm, confirmDialog] = useConfirm();
  const remove = async () => {
    if (!(await confirm(t("personal.deleteConfirm")))) return;
    try {
      await api.del("/user/self");
      toast.success(t("personal.deleted"));
      await logout();
      navigate("/", { replace: true });
    } catch {
      // toast shown by the client
    }
  };
  return (
    <Card title={t("personal.deleteAccount")}>
      <div className="stack">
        <p className={`muted small ${styles.note}`}>{t("personal.deleteHint", { name: user.username })}</p>
        <div className={styles.row}>
          <input name="delete-confirm-username" value={typed} onChange={(e) => setTyped(e.target.value)} placeholder={user.username} />
          <Button variant="danger" disabled={typed !== user.username} onClick={() => void remove()} data-testid="personal-delete">
            {t("personal.deleteAccount")}
          </Button>
        </div>
      </div>
      {confirmDialog}
    </Card>
  );
}

export default function PersonalSettingsPage() {
  const { user } = useAuth();
  if (user === null) return null;
  return (
    <div className={styles.page}>
      <ProfileCard user={user} />
      <PasswordCard />
      <AccessCard />
      <BindingsCard user={user} />
      {user.role >= ROLE.ROOT ? null : <DeleteAccountCard user={user} />}
    </div>
  );
}
