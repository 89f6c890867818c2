/**
 * Create or edit a channel: type, name, base URL, key (one channel per line when creating; empty
 * keeps the stored key when editing: keys are never sent back), models, groups, model mapping,
 * system prompt, priority, weight and the type's config fields (config JSON keys).
 */
import { useEffect, useMemo, useState, type FormEvent } from "react";
import { api } from "@/api/client";
import type { Channel } from "@/api/types";
import { JsonEditor, parseJsonObject, formatJson, type JsonObject } from "@/components/JsonEditor";
import { Modal } from "@/components/Modal";
import { MultiSelect } from "@/components/MultiSelect";
import { toast } from "@/components/Toast";
import { Button, Field } from "@/components/ui";
import { useI18n } from "@/i18n";
import {
  CHANNEL_TYPES,
  CONFIG_FIELDS,
  KEY_FORMATS,
  KEY_FROM_CONFIG,
  TYPE_NOTES,
  channelType,
  channelTypeName,
  type ConfigKey,
} from "./channelTypes";
import styles from "./ChannelsPage.module.css";

const MAPPING_EXAMPLE = JSON.stringify({ "gpt-3.5-turbo-0301": "gpt-3.5-turbo", "gpt-4-0314": "gpt-4" }, null, 2);

function splitList(value: string): string[] {
  return value
    .split(/[,\n]/)
    .map((item) => item.trim())
    .filter(Boolean);
}

function parseConfig(text: string): JsonObject {
  const { value } = parseJsonObject(text);
  return value ?? {};
}

/** A credential on one line: JSON compacted, other text's line breaks turned into spaces. */
function oneLine(value: string): string {
  const text = value.trim();
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return text.replace(/\s*\n\s*/g, " ");
  }
}

function unique(values: string[]): string[] {
  return Array.from(new Set(values));
}

export default function ChannelEditor({
  channel,
  typeModels,
  onClose,
  onSaved,
}: {
  channel: Channel | null;
  /** models each type offers by default (GET /api/models); its keys are the relayed types */
  typeModels: Record<string, string[]>;
  onClose: () => void;
  onSaved: () => void;
}) {
  const { t } = useI18n();
  const editing = channel !== null;
  const storedConfig = useMemo(() => parseConfig(channel?.config ?? ""), [channel]);
  const [type, setType] = useState(channel?.type ?? 1);
  const [name, setName] = useState(channel?.name ?? "");
  const [baseUrl, setBaseUrl] = useState(channel?.base_url ?? "");
  const [key, setKey] = useState("");
  const [models, setModels] = useState<string[]>(channel ? splitList(channel.models) : (typeModels["1"] ?? []));
  const [customModels, setCustomModels] = useState("");
  const [groups, setGroups] = useState<string[]>(channel ? splitList(channel.group) : ["default"]);
  const [mapping, setMapping] = useState(channel?.model_mapping ? formatJson(channel.model_mapping) : "");
  const [systemPrompt, setSystemPrompt] = useState(channel?.system_prompt ?? "");
  const [priority, setPriority] = useState(String(channel?.priority ?? 0));
  const [weight, setWeight] = useState(String(channel?.weight ?? 0));
  const [config, setConfig] = useState<Partial<Record<ConfigKey, string>>>(() => {
    const shown: Partial<Record<ConfigKey, string>> = {};
    for (const [field, value] of Object.entries(storedConfig)) {
      if (typeof value === "string") shown[field as ConfigKey] = value;
    }
    return shown;
  });
  const [allModels, setAllModels] = useState<string[]>([]);
  const [groupOptions, setGroupOptions] = useState<string[]>(["default"]);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    void api.get<{ id: string }[]>("/channel/models").then((cards) => setAllModels(cards.map((card) => card.id)), () => undefined);
    void api.get<string[]>("/group/").then(setGroupOptions, () => undefined);
  }, []);

  // GET /api/models may answer after the form opened: a new channel starts with the type's models
  useEffect(() => {
    if (!editing) setModels((current) => (current.length ? current : (typeModels[String(type)] ?? [])));
  }, [typeModels]);

  const relayed = useMemo(() => new Set(Object.keys(typeModels).map(Number)), [typeModels]);
  const supportedTypes = CHANNEL_TYPES.filter((item) => relayed.has(item.id));
  const otherTypes = CHANNEL_TYPES.filter((item) => !relayed.has(item.id));
  const configFields = CONFIG_FIELDS[type] ?? [];
  const keyFromConfig = KEY_FROM_CONFIG[type];
  const defaultUrl = channelType(type)?.baseUrl ?? "";
  const modelOptions = useMemo(
    () => unique([...allModels, ...Object.values(typeModels).flat()]),
    [allModels, typeModels],
  );

  const changeType = (next: number) => {
    setType(next);
    // a new channel with no model chosen yet gets the type's models (One API's form)
    if (!editing && (models.length === 0 || models.join(",") === (typeModels[String(type)] ?? []).join(","))) {
      setModels(typeModels[String(next)] ?? []);
    }
  };

  const addCustomModels = () => {
    const added = splitList(customModels);
    if (added.length === 0) return;
    setModels(unique([...models, ...added]));
    setCustomModels("");
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const trimmedName = name.trim();
    if (!trimmedName) {
      toast.error(t("channels.nameRequired"));
      return;
    }
    for (const field of configFields) {
      // A stored secret is never shown (the server blanks it) but is kept when left empty.
      const stored = editing && (storedConfig[field.key] || field.secret);
      if (field.required && !(config[field.key] ?? "").trim() && !stored) {
        toast.error(t("channels.configRequired", { field: t(field.label) }));
        return;
      }
    }
    let keyText = key.trim();
    if (!keyText && keyFromConfig && keyFromConfig.every((part) => (config[part] ?? "").trim())) {
      // One API's key for these types: the credentials joined by "|" (on one line: a key
      // with line breaks would be read as several keys)
      const retyped = keyFromConfig.some((part) => (config[part] ?? "").trim() !== String(storedConfig[part] ?? "").trim());
      if (!editing || retyped) keyText = keyFromConfig.map((part) => oneLine(config[part] ?? "")).join("|");
    }
    if (!editing && !keyText) {
      toast.error(t("channels.keyRequired"));
      return;
    }
    if (models.length === 0) {
      toast.error(t("channels.modelsRequired"));
      return;
    }
    const mappingCheck = parseJsonObject(mapping);
    if (mappingCheck.error) {
      toast.error(t("channels.mappingInvalid", { reason: t(mappingCheck.error.key, mappingCheck.error.vars) }));
      return;
    }
    if (mappingCheck.value && Object.values(mappingCheck.value).some((target) => typeof target !== "string")) {
      toast.error(t("channels.mappingStrings"));
      return;
    }
    const priorityValue = Number(priority || 0);
    const weightValue = Number(weight || 0);
    if (!Number.isInteger(priorityValue) || !Number.isInteger(weightValue) || weightValue < 0) {
      toast.error(t("channels.numbersInvalid"));
      return;
    }
    // config: the stored object (keys this form does not show stay) with this type's fields
    const nextConfig: JsonObject = { ...storedConfig };
    for (const field of configFields) {
      const value = (config[field.key] ?? "").trim();
      if (value) nextConfig[field.key] = value;
      else delete nextConfig[field.key];
    }
    const configText = Object.keys(nextConfig).length ? JSON.stringify(nextConfig) : editing && channel?.config ? "{}" : "";
    const body = {
      type,
      name: trimmedName,
      base_url: baseUrl.trim().replace(/\/+$/, ""),
      models: models.join(","),
      group: (groups.length ? groups : ["default"]).join(","),
      model_mapping: mapping.trim(),
      system_prompt: systemPrompt,
      priority: priorityValue,
      weight: weightValue,
      config: configText,
    };
    setBusy(true);
    try {
      if (channel) {
        await api.put("/channel/", { id: channel.id, ...body, ...(keyText ? { key: keyText } : {}) });
        toast.success(t("channels.updated"));
      } else {
        const created = await api.post<Channel[]>("/channel/", { ...body, key: keyText });
        toast.success(t("channels.createdCount", { count: created.length }));
      }
      onSaved();
    } catch {
      // toast shown by the client
    } finally {
      setBusy(false);
    }
  };

  const keyHint = editing
    ? t("channels.keyKeep")
    : KEY_FORMATS[type]
      ? t("channels.keyFormat", { format: KEY_FORMATS[type] })
      : t("channels.keyBatch");

  return (
    <Modal
      open
      wide
      title={editing ? t("channels.edit", { name: channel.name }) : t("channels.add")}
      onClose={onClose}
      footer={
        <>
          <Button onClick={onClose}>{t("common.cancel")}</Button>
          <Button variant="primary" type="submit" form="channel-form" busy={busy} data-testid="channel-save">
            {t("common.save")}
          </Button>
        </>
      }
    >
      <form id="channel-form" className="stack" onSubmit={submit} autoComplete="off">
        <div className="grid-2">
          <Field label={t("channels.type")}>
            <select name="type" value={type} onChange={(e) => changeType(Number(e.target.value))}>
              {supportedTypes.length ? (
                <optgroup label={t("channels.typesRelayed")}>
                  {supportedTypes.map((item) => (
                    <option key={item.id} value={item.id}>
                      {item.name}
                    </option>
                  ))}
                </optgroup>
              ) : null}
              <optgroup label={supportedTypes.length ? t("channels.typesOther") : t("channels.type")}>
                {(supportedTypes.length ? otherTypes : CHANNEL_TYPES).map((item) => (
                  <option key={item.id} value={item.id}>
                    {item.name}
                  </option>
                ))}
                {channelType(type) ? null : <option value={type}>{channelTypeName(type)}</option>}
              </optgroup>
            </select>
          </Field>
          <Field label={t("channels.name")}>
            <input name="name" maxLength={128} required value={name} onChange={(e) => setName(e.target.value)} placeholder={t("channels.namePlaceholder")} />
          </Field>
        </div>
        {TYPE_NOTES[type] ? <p className="muted small">{t(TYPE_NOTES[type])}</p> : null}
        {relayed.size && !relayed.has(type) ? <p className="muted small">{t("channels.typeNotRelayed")}</p> : null}
        <Field label={t("channels.baseUrl")} hint={defaultUrl ? t("channels.baseUrlHint") : keyFromConfig ? t("common.optional") : t("channels.baseUrlNeeded")}>
          <input
            name="base_url"
            type="url"
            maxLength={512}
            value={baseUrl}
            onChange={(e) => setBaseUrl(e.target.value)}
            placeholder={defaultUrl || "https://…"}
          />
        </Field>
        {configFields.map((field) => (
          <Field key={field.key} label={t(field.label)} hint={field.required ? undefined : t("common.optional")}>
            {field.multiline ? (
              <textarea
                name={`config.${field.key}`}
                rows={4}
                value={config[field.key] ?? ""}
                placeholder={field.placeholder}
                onChange={(e) => setConfig({ ...config, [field.key]: e.target.value })}
              />
            ) : (
              <input
                name={`config.${field.key}`}
                type={field.secret ? "password" : "text"}
                autoComplete="off"
                value={config[field.key] ?? ""}
                placeholder={field.placeholder}
                onChange={(e) => setConfig({ ...config, [field.key]: e.target.value })}
              />
            )}
          </Field>
        ))}
        {keyFromConfig ? null : (
          <Field label={t("channels.key")} hint={keyHint}>
            {editing ? (
              <input name="key" type="password" autoComplete="new-password" value={key} onChange={(e) => setKey(e.target.value)} placeholder={t("channels.keyKeepPlaceholder")} />
            ) : (
              <textarea name="key" rows={3} autoComplete="off" spellCheck={false} value={key} onChange={(e) => setKey(e.target.value)} placeholder={t("channels.keyPlaceholder")} />
            )}
          </Field>
        )}
        <Field label={t("channels.models")}>
          <div className="stack" style={{ gap: "0.5rem" }}>
            <MultiSelect options={modelOptions} value={models} onChange={setModels} testId="channel-models" />
            {models.length ? (
              <div className={styles.chips} aria-label={t("channels.selectedModels")} data-testid="channel-chosen-models">
                {models.map((model) => (
                  <button
                    key={model}
                    type="button"
                    className={styles.chip}
                    title={t("channels.removeModel", { model })}
                    aria-label={t("channels.removeModel", { model })}
                    onClick={() => setModels(models.filter((item) => item !== model))}
                  >
                    {model} ×
                  </button>
                ))}
              </div>
            ) : null}
            <div className="btn-row">
              <Button small onClick={() => setModels(unique([...models, ...(typeModels[String(type)] ?? [])]))} data-testid="channel-fill-models">
                {t("channels.fillTypeModels")}
              </Button>
            </div>
            <div className="btn-row">
              <input
                name="custom-models"
                style={{ flex: 1, minWidth: "10rem", width: "auto" }}
                value={customModels}
                onChange={(e) => setCustomModels(e.target.value)}
                onKeyDown={(e) => {
                  if (e.key === "Enter") {
                    e.preventDefault();
                    addCustomModels();
                  }
                }}
                placeholder={t("channels.customModels")}
              />
              <Button small onClick={addCustomModels}>
                {t("channels.addModels")}
              </Button>
            </div>
          </div>
        </Field>
        <Field label={t("channels.groups")}>
          <MultiSelect options={groupOptions} value={groups} onChange={setGroups} emptyText={t("channels.groupsEmpty")} testId="channel-groups" />
        </Field>
        <Field label={t("channels.modelMapping")} hint={t("channels.modelMappingHint")}>
          <JsonEditor name="model_mapping" value={mapping} onChange={setMapping} placeholder={MAPPING_EXAMPLE} rows={5} testId="channel-mapping" />
        </Field>
        <Field label={t("channels.systemPrompt")} hint={t("channels.systemPromptHint")}>
          <textarea name="system_prompt" rows={3} value={systemPrompt} onChange={(e) => setSystemPrompt(e.target.value)} />
        </Field>
        <div className="grid-2">
          <Field label={t("channels.priority")} hint={t("channels.priorityHint")}>
            <input name="priority" type="number" step={1} value={priority} onChange={(e) => setPriority(e.target.value)} />
          </Field>
          <Field label={t("channels.weight")} hint={t("channels.weightHint")}>
            <input name="weight" type="number" min={0} step={1} value={weight} onChange={(e) => setWeight(e.target.value)} />
          </Field>
        </div>
      </form>
    </Modal>
  );
}
