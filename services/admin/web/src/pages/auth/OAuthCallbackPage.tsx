/**
 * /oauth/github, /oauth/oidc, /oauth/lark: the provider sent the browser back with `code` and
 * `state`; the server checks the state, then logs in (or registers), or binds the account when
 * someone is already logged in (answer message "bind").
 */
import { useEffect, useRef, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { api } from "@/api/client";
import type { LoggedInUser } from "@/api/types";
import { useAuth } from "@/auth";
import { toast } from "@/components/Toast";
import { Spinner } from "@/components/ui";
import { useI18n } from "@/i18n";

const PROVIDERS = new Set(["github", "oidc", "lark"]);

export default function OAuthCallbackPage() {
  const { t } = useI18n();
  const { provider = "" } = useParams();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const { refreshUser } = useAuth();
  const [failed, setFailed] = useState<string | null>(null);
  const started = useRef(false);

  useEffect(() => {
    if (started.current) return; // the code is single-use: never send it twice (StrictMode)
    started.current = true;
    if (!PROVIDERS.has(provider)) {
      setFailed(t("auth.oauthUnknown"));
      return;
    }
    void (async () => {
      try {
        const answer = await api.envelope<LoggedInUser | null>("GET", `/oauth/${provider}`, {
          query: { code: params.get("code") ?? "", state: params.get("state") ?? "" },
          silent: true,
        });
        if (answer.message === "bind") {
          toast.success(t("auth.oauthBound"));
          navigate("/setting/personal", { replace: true });
          return;
        }
        await refreshUser();
        toast.success(t("auth.loggedIn"));
        navigate("/dashboard", { replace: true });
      } catch (error) {
        setFailed(error instanceof Error ? error.message : t("auth.oauthFailed"));
      }
    })();
  }, [provider, params, navigate, refreshUser, t]);

  if (failed !== null) {
    return (
      <div className="card center-block" data-testid="oauth-failed">
        <h1>{t("auth.oauthFailed")}</h1>
        <p>{failed}</p>
        <Link to="/login">{t("auth.login")}</Link>
      </div>
    );
  }
  return <Spinner label={t("auth.oauthWorking")} />;
}
