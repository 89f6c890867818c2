/** Chat: the operator's ChatLink in a frame (the nav entry is hidden without one). */
import { useAuth } from "@/auth";
import { Card } from "@/components/ui";
import { useI18n } from "@/i18n";

export default function ChatPage() {
  const { t } = useI18n();
  const { status } = useAuth();
  if (!status?.chat_link) {
    return (
      <Card>
        <p className="muted">{t("chat.none")}</p>
      </Card>
    );
  }
  return (
    <iframe
      src={status.chat_link}
      className="frame"
      style={{ height: "calc(100vh - 8rem)", minHeight: "24rem" }}
      title={t("nav.chat")}
      data-testid="chat-frame"
    />
  );
}
