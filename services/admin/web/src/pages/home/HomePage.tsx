/**
 * Home: the operator's Notice and HomePageContent (Markdown, sanitized; a content that is an
 * https:// URL is shown in a frame, as One API does), else a short default.
 */
import { useEffect, useState } from "react";
import { Link } from "react-router";
import { api } from "@/api/client";
import { useAuth } from "@/auth";
import { Markdown } from "@/components/Markdown";
import { Card, Spinner } from "@/components/ui";
import { useI18n } from "@/i18n";
import { formatTime } from "@/lib/format";

export default function HomePage() {
  const { t } = useI18n();
  const { status, user } = useAuth();
  const [notice, setNotice] = useState("");
  const [content, setContent] = useState<string | null>(null);

  useEffect(() => {
    void api.get<string>("/notice").then(setNotice, () => undefined);
    void api.get<string>("/home_page_content").then(setContent, () => setContent(""));
  }, []);

  return (
    <>
      {notice ? (
        <Card title={t("home.notice")} className="notice">
          <Markdown source={notice} />
        </Card>
      ) : null}
      {content === null ? (
        <Spinner />
      ) : content.startsWith("https://") ? (
        <iframe src={content} className="frame" style={{ height: "80vh" }} title={t("nav.home")} />
      ) : content ? (
        <Card>
          <Markdown source={content} />
        </Card>
      ) : (
        <Card title={status?.system_name || "One API"}>
          <div className="stack" data-testid="home-default">
            <p>{t("home.intro")}</p>
            <div className="grid-2 small">
              <div>
                <div className="muted">{t("home.version")}</div>
                <div>{status?.version ?? "-"}</div>
              </div>
              <div>
                <div className="muted">{t("home.startTime")}</div>
                <div>{status ? formatTime(status.start_time) : "-"}</div>
              </div>
            </div>
            <div className="btn-row">
              {user ? (
                <Link className="btn btn-primary" to="/dashboard">
                  {t("nav.dashboard")}
                </Link>
              ) : (
                <>
                  <Link className="btn btn-primary" to="/login">
                    {t("auth.login")}
                  </Link>
                  <Link className="btn" to="/register">
                    {t("auth.register")}
                  </Link>
                </>
              )}
            </div>
          </div>
        </Card>
      )}
    </>
  );
}
