/** Login: password, and the OAuth providers the operator enabled (GitHub, OIDC, Lark, WeChat). */
import { useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api } from "@/api/client";
import type { LoggedInUser } from "@/api/types";
import { useAuth } from "@/auth";
import { Modal } from "@/components/Modal";
import { toast } from "@/components/Toast";
import { Button, Field } from "@/components/ui";
import { useI18n } from "@/i18n";
import { safeFrom } from "@/lib/navigation";
import { startOAuth, type Provider } from "./oauth";
import styles from "./auth.module.css";

export default function LoginPage() {
  const { t } = useI18n();
  const { login, status, refreshUser } = useAuth();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [wechatOpen, setWechatOpen] = useState(false);
  const [wechatCode, setWechatCode] = useState("");

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    try {
      await login(username.trim(), password);
      toast.success(t("auth.loggedIn"));
      navigate(safeFrom(params.get("from")), { replace: true });
    } catch {
      // toast shown by the client
    } finally {
      setBusy(false);
    }
  };

  const oauth = (provider: Provider) => {
    if (status) void startOAuth(provider, status).catch(() => undefined);
  };

  const wechatLogin = async () => {
    try {
      await api.get<LoggedInUser>("/oauth/wechat", { query: { code: wechatCode.trim() } });
      await refreshUser();
      setWechatOpen(false);
      toast.success(t("auth.loggedIn"));
      navigate(safeFrom(params.get("from")), { replace: true });
    } catch {
      // toast shown by the client
    }
  };

  const providers: { key: string; label: string; onClick: () => void }[] = [];
  if (status?.github_oauth) providers.push({ key: "github", label: t("auth.withGithub"), onClick: () => oauth("github") });
  if (status?.oidc) providers.push({ key: "oidc", label: t("auth.withOidc"), onClick: () => oauth("oidc") });
  if (status?.lark_client_id) providers.push({ key: "lark", label: t("auth.withLark"), onClick: () => oauth("lark") });
  if (status?.wechat_login) providers.push({ key: "wechat", label: t("auth.withWechat"), onClick: () => setWechatOpen(true) });

  return (
    <div className={`card narrow ${styles.box}`}>
      <h1>{t("auth.loginTitle")}</h1>
      <form className="stack" onSubmit={submit}>
        <Field label={t("auth.usernameOrEmail")}>
          <input name="username" autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} />
        </Field>
        <Field label={t("auth.password")}>
          <input name="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </Field>
        <Button type="submit" variant="primary" busy={busy} data-testid="login-submit">
          {t("auth.login")}
        </Button>
      </form>
      <div className={styles.links}>
        <span>
          {t("auth.noAccount")} <Link to="/register">{t("auth.register")}</Link>
        </span>
        <Link to="/reset">{t("auth.forgot")}</Link>
      </div>
      {providers.length > 0 ? (
        <div className={styles.providers}>
          <p className="muted small">{t("auth.orWith")}</p>
          <div className="btn-row">
            {providers.map((provider) => (
              <Button key={provider.key} onClick={provider.onClick} data-testid={`oauth-${provider.key}`}>
                {provider.label}
              </Button>
            ))}
          </div>
        </div>
      ) : null}
      <Modal
        open={wechatOpen}
        title={t("auth.withWechat")}
        onClose={() => setWechatOpen(false)}
        footer={
          <Button variant="primary" onClick={wechatLogin} disabled={!wechatCode.trim()}>
            {t("auth.login")}
          </Button>
        }
      >
        <div className="stack">
          {status?.wechat_qrcode ? <img src={status.wechat_qrcode} alt="" className={styles.qr} /> : null}
          <p className="muted small">{t("auth.wechatHint")}</p>
          <Field label={t("auth.verificationCode")}>
            <input value={wechatCode} onChange={(e) => setWechatCode(e.target.value)} />
          </Field>
        </div>
      </Modal>
    </div>
  );
}
