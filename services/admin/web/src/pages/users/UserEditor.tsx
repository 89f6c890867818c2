/**
 * Create a user (username, display name, password) or edit one (username, display name, group,
 * quota, password: empty keeps it).
 */
import { useEffect, useState, type FormEvent } from "react";
import { api } from "@/api/client";
import type { User } from "@/api/types";
import { useAuth } from "@/auth";
import { Modal } from "@/components/Modal";
import { toast } from "@/components/Toast";
import { Button, Field } from "@/components/ui";
import { useI18n } from "@/i18n";
import { formatQuota, fromQuota, toQuota } from "@/lib/format";

export default function UserEditor({ user, onClose, onSaved }: { user: User | null; onClose: () => void; onSaved: () => void }) {
  const { t } = useI18n();
  const { status } = useAuth();
  const editing = user !== null;
  const initialAmount = user ? String(fromQuota(user.quota, status)) : "";
  const [username, setUsername] = useState(user?.username ?? "");
  const [displayName, setDisplayName] = useState(user?.display_name ?? "");
  const [password, setPassword] = useState("");
  const [group, setGroup] = useState(user?.group ?? "default");
  const [amount, setAmount] = useState(initialAmount);
  const [groups, setGroups] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const currency = status?.display_in_currency ?? true;

  useEffect(() => {
    if (editing) void api.get<string[]>("/group/").then(setGroups, () => undefined);
  }, [editing]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (password && (password.length < 8 || password.length > 20)) {
      toast.error(t("auth.passwordLength"));
      return;
    }
    setBusy(true);
    try {
      if (user) {
        const body: Record<string, unknown> = {
          id: user.id,
          username: username.trim(),
          display_name: displayName.trim(),
          group: group.trim(),
          password,
        };
        if (amount.trim() !== initialAmount) {
          const quota = toQuota(Number(amount), status);
          if (amount.trim() === "" || !Number.isFinite(quota)) {
            toast.error(t("users.quotaInvalid"));
            return;
          }
          body.quota = quota;
        }
        await api.put("/user/", body);
        toast.success(t("users.updated", { name: username.trim() || user.username }));
      } else {
        if (!username.trim() || !password) {
          toast.error(t("users.createNeeds"));
          return;
        }
        await api.post("/user/", { username: username.trim(), display_name: displayName.trim(), password });
        toast.success(t("users.created", { name: username.trim() }));
      }
      onSaved();
    } catch {
      // toast shown by the client
    } finally {
      setBusy(false);
    }
  };

  const groupOptions = Array.from(new Set([...groups, group].filter(Boolean)));
  const preview = toQuota(Number(amount), status);

  return (
    <Modal
      open
      title={editing ? t("users.edit", { name: user.username }) : t("users.add")}
      onClose={onClose}
      footer={
        <>
          <Button onClick={onClose}>{t("common.cancel")}</Button>
          <Button variant="primary" type="submit" form="user-form" busy={busy} data-testid="user-save">
            {t("common.save")}
          </Button>
        </>
      }
    >
      <form id="user-form" className="stack" onSubmit={submit} autoComplete="off">
        <Field label={t("auth.username")}>
          <input name="username" maxLength={12} required={!editing} value={username} onChange={(e) => setUsername(e.target.value)} />
        </Field>
        <Field label={t("users.displayName")}>
          <input name="display_name" maxLength={20} value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
        </Field>
        <Field label={t("auth.password")} hint={editing ? t("users.passwordKeep") : t("auth.passwordLength")}>
          <input
            name="password"
            type="password"
            autoComplete="new-password"
            required={!editing}
            maxLength={20}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </Field>
        {editing ? (
          <>
            <Field label={t("users.group")}>
              <select name="group" value={group} onChange={(e) => setGroup(e.target.value)}>
                {groupOptions.map((name) => (
                  <option key={name} value={name}>
                    {name}
                  </option>
                ))}
              </select>
            </Field>
            <Field
              label={currency ? t("users.quotaUsd") : t("users.quota")}
              hint={Number.isFinite(preview) && amount.trim() ? t("users.quotaHint", { quota: preview, shown: formatQuota(preview, status) }) : undefined}
            >
              <input name="quota" type="number" step="any" value={amount} onChange={(e) => setAmount(e.target.value)} />
            </Field>
          </>
        ) : null}
      </form>
    </Modal>
  );
}
