/** About: the operator's About option (Markdown, or an https:// URL shown in a frame). */
import { useEffect, useState } from "react";
import { api } from "@/api/client";
import { Markdown } from "@/components/Markdown";
import { Card, PageHeader, Spinner } from "@/components/ui";
import { useI18n } from "@/i18n";

export default function AboutPage() {
  const { t } = useI18n();
  const [about, setAbout] = useState<string | null>(null);
  useEffect(() => {
    void api.get<string>("/about").then(setAbout, () => setAbout(""));
  }, []);
  if (about === null) return <Spinner />;
  if (about.startsWith("https://")) {
    return <iframe src={about} className="frame" style={{ height: "80vh" }} title={t("nav.about")} />;
  }
  return (
    <>
      <PageHeader title={t("nav.about")} />
      <Card>{about ? <Markdown source={about} /> : <p className="muted">{t("about.empty")}</p>}</Card>
    </>
  );
}
