/** Registration: username and password; e-mail with a code when EmailVerificationEnabled. */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api } from "@/api/client";
import { useAuth } from "@/auth";
import { toast } from "@/components/Toast";
import { Turnstile, useTurnstileEnabled } from "@/components/Turnstile";
import { Button, Field } from "@/components/ui";
import { useI18n } from "@/i18n";
import styles from "./auth.module.css";

const AFF_STORAGE_KEY = "oneapi.aff";
const RESEND_SECONDS = 30;

export default function RegisterPage() {
  const { t } = useI18n();
  const { status } = useAuth();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [form, setForm] = useState({ username: "", password: "", password2: "", email: "", code: "" });
  const [busy, setBusy] = useState(false);
  const [countdown, setCountdown] = useState(0);
  const [turnstileToken, setTurnstileToken] = useState("");
  const turnstile = useTurnstileEnabled();
  const onToken = useCallback((token: string) => setTurnstileToken(token), []);
  const emailVerification = Boolean(status?.email_verification);

  // An invitation link (?aff=CODE) is remembered until registration, as One API does.
  useEffect(() => {
    const aff = params.get("aff");
    if (aff) localStorage.setItem(AFF_STORAGE_KEY, aff);
  }, [params]);

  useEffect(() => {
    if (countdown <= 0) return;
    const timer = window.setTimeout(() => setCountdown((value) => value - 1), 1000);
    return () => window.clearTimeout(timer);
  }, [countdown]);

  const set = (key: keyof typeof form) => (event: { target: { value: string } }) =>
    setForm((previous) => ({ ...previous, [key]: event.target.value }));

  const sendCode = async () => {
    if (turnstile && !turnstileToken) {
      toast.info(t("auth.turnstileWait"));
      return;
    }
    try {
      await api.get("/verification", { query: { email: form.email.trim(), turnstile: turnstileToken } });
      toast.success(t("auth.codeSent"));
      setCountdown(RESEND_SECONDS);
    } catch {
      // toast shown by the client
    }
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (form.password.length < 8 || form.password.length > 20) {
      toast.error(t("auth.passwordLength"));
      return;
    }
    if (form.password !== form.password2) {
      toast.error(t("auth.passwordMismatch"));
      return;
    }
    if (turnstile && !turnstileToken) {
      toast.info(t("auth.turnstileWait"));
      return;
    }
    setBusy(true);
    try {
      await api.post(
        "/user/register",
        {
          username: form.username.trim(),
          password: form.password,
          email: emailVerification ? form.email.trim() : "",
          verification_code: emailVerification ? form.code.trim() : "",
          aff_code: localStorage.getItem(AFF_STORAGE_KEY) ?? "",
        },
        { query: { turnstile: turnstileToken } },
      );
      localStorage.removeItem(AFF_STORAGE_KEY);
      toast.success(t("auth.registered"));
      navigate("/login", { replace: true });
    } catch {
      // toast shown by the client
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className={`card narrow ${styles.box}`}>
      <h1>{t("auth.registerTitle")}</h1>
      <form className="stack" onSubmit={submit}>
        <Field label={t("auth.username")}>
          <input name="username" autoComplete="username" required maxLength={12} value={form.username} onChange={set("username")} />
        </Field>
        <Field label={t("auth.password")} hint={t("auth.passwordLength")}>
          <input name="password" type="password" autoComplete="new-password" required value={form.password} onChange={set("password")} />
        </Field>
        <Field label={t("auth.passwordAgain")}>
          <input name="password2" type="password" autoComplete="new-password" required value={form.password2} onChange={set("password2")} />
        </Field>
        {emailVerification ? (
          <>
            <Field label={t("auth.email")}>
              <div className={styles.codeRow}>
                <input name="email" type="email" autoComplete="email" required value={form.email} onChange={set("email")} />
                <Button onClick={sendCode} disabled={countdown > 0 || !form.email.trim()}>
                  {countdown > 0 ? t("auth.resendIn", { seconds: countdown }) : t("auth.sendCode")}
                </Button>
              </div>
            </Field>
            <Field label={t("auth.verificationCode")}>
              <input name="verification_code" required value={form.code} onChange={set("code")} />
            </Field>
          </>
        ) : null}
        <Turnstile onToken={onToken} />
        <Button type="submit" variant="primary" busy={busy} data-testid="register-submit">
          {t("auth.register")}
        </Button>
      </form>
      <div className={styles.links}>
        <span>
          {t("auth.haveAccount")} <Link to="/login">{t("auth.login")}</Link>
        </span>
      </div>
    </div>
  );
}
