/**
 * One API's channel types (libs/providers/channel_types.py): id, name, default base URL, and
 * what the edit form asks for each (config keys, key format, notes).
 * Whether the gateway relays a type comes from the server (`GET /api/models` keys).
 */
import type { MessageKey } from "@/i18n";

export interface ChannelTypeDef {
  id: number;
  name: string;
  /** "" when the operator must give one */
  baseUrl: string;
}

export const CHANNEL_TYPES: readonly ChannelTypeDef[] = [
  { id: 1, name: "OpenAI", baseUrl: "https://api.openai.com" },
  { id: 2, name: "API2D", baseUrl: "https://oa.api2d.net" },
  { id: 3, name: "Azure OpenAI", baseUrl: "" },
  { id: 4, name: "CloseAI", baseUrl: "https://api.closeai-proxy.xyz" },
  { id: 5, name: "OpenAI-SB", baseUrl: "https://api.openai-sb.com" },
  { id: 6, name: "OpenAI Max", baseUrl: "https://api.openaimax.com" },
  { id: 7, name: "OhMyGPT", baseUrl: "https://api.ohmygpt.com" },
  { id: 8, name: "Custom", baseUrl: "" },
  { id: 9, name: "AI.LS", baseUrl: "https://api.caipacity.com" },
  { id: 10, name: "AI Proxy", baseUrl: "https://api.aiproxy.io" },
  { id: 11, name: "Google PaLM2", baseUrl: "https://generativelanguage.googleapis.com" },
  { id: 12, name: "API2GPT", baseUrl: "https://api.api2gpt.com" },
  { id: 13, name: "AIGC2D", baseUrl: "https://api.aigc2d.com" },
  { id: 14, name: "Anthropic Claude", baseUrl: "https://api.anthropic.com" },
  { id: 15, name: "Baidu Wenxin Qianfan", baseUrl: "https://aip.baidubce.com" },
  { id: 16, name: "Zhipu ChatGLM", baseUrl: "https://open.bigmodel.cn" },
  { id: 17, name: "Alibaba Tongyi Qianwen", baseUrl: "https://dashscope.aliyuncs.com" },
  { id: 18, name: "iFlytek Spark", baseUrl: "" },
  { id: 19, name: "360 Zhinao", baseUrl: "https://ai.360.cn" },
  { id: 20, name: "OpenRouter", baseUrl: "https://openrouter.ai/api" },
  { id: 21, name: "AI Proxy Library", baseUrl: "https://api.aiproxy.io" },
  { id: 22, name: "FastGPT", baseUrl: "https://fastgpt.run/api/openapi" },
  { id: 23, name: "Tencent Hunyuan", baseUrl: "https://hunyuan.tencentcloudapi.com" },
  { id: 24, name: "Google Gemini", baseUrl: "https://generativelanguage.googleapis.com" },
  { id: 25, name: "Moonshot AI", baseUrl: "https://api.moonshot.cn" },
  { id: 26, name: "Baichuan", baseUrl: "https://api.baichuan-ai.com" },
  { id: 27, name: "MiniMax", baseUrl: "https://api.minimax.chat" },
  { id: 28, name: "Mistral AI", baseUrl: "https://api.mistral.ai" },
  { id: 29, name: "Groq", baseUrl: "https://api.groq.com/openai" },
  { id: 30, name: "Ollama", baseUrl: "http://localhost:11434" },
  { id: 31, name: "01.AI (LingYiWanWu)", baseUrl: "https://api.lingyiwanwu.com" },
  { id: 32, name: "StepFun", baseUrl: "https://api.stepfun.com" },
  { id: 33, name: "AWS Claude", baseUrl: "" },
  { id: 34, name: "Coze", baseUrl: "https://api.coze.com" },
  { id: 35, name: "Cohere", baseUrl: "https://api.cohere.ai" },
  { id: 36, name: "DeepSeek", baseUrl: "https://api.deepseek.com" },
  { id: 37, name: "Cloudflare", baseUrl: "https://api.cloudflare.com" },
  { id: 38, name: "DeepL", baseUrl: "https://api-free.deepl.com" },
  { id: 39, name: "together.ai", baseUrl: "https://api.together.xyz" },
  { id: 40, name: "Doubao (Volcengine Ark)", baseUrl: "https://ark.cn-beijing.volces.com" },
  { id: 41, name: "Novita", baseUrl: "https://api.novita.ai/v3/openai" },
  { id: 42, name: "Vertex AI", baseUrl: "" },
  { id: 43, name: "Proxy", baseUrl: "" },
  { id: 44, name: "SiliconFlow", baseUrl: "https://api.siliconflow.cn" },
  { id: 45, name: "xAI", baseUrl: "https://api.x.ai" },
  { id: 46, name: "Replicate", baseUrl: "https://api.replicate.com/v1/models" },
  { id: 47, name: "Baidu Qianfan V2", baseUrl: "https://qianfan.baidubce.com" },
  { id: 48, name: "iFlytek Spark V2", baseUrl: "https://spark-api-open.xf-yun.com" },
  { id: 49, name: "Alibaba Bailian", baseUrl: "https://dashscope.aliyuncs.com" },
  { id: 50, name: "OpenAI Compatible", baseUrl: "" },
  { id: 51, name: "Gemini (OpenAI compatible)", baseUrl: "https://generativelanguage.googleapis.com/v1beta/openai" },
];

const BY_ID = new Map(CHANNEL_TYPES.map((type) => [type.id, type]));

export function channelType(id: number): ChannelTypeDef | undefined {
  return BY_ID.get(id);
}

/** The type's name; `type N` for an id this UI does not know (a fork's row). */
export function channelTypeName(id: number): string {
  return BY_ID.get(id)?.name ?? `type ${id}`;
}

/** The keys of a channel's `config` JSON the form edits. */
export type ConfigKey =
  | "region"
  | "ak"
  | "sk"
  | "user_id"
  | "api_version"
  | "library_id"
  | "plugin"
  | "vertex_ai_project_id"
  | "vertex_ai_adc";

export interface ConfigField {
  key: ConfigKey;
  label: MessageKey;
  placeholder?: string;
  required?: boolean;
  multiline?: boolean;
  secret?: boolean;
}

/** The config fields each type asks for (One API's edit form). */
export const CONFIG_FIELDS: Readonly<Record<number, readonly ConfigField[]>> = {
  3: [{ key: "api_version", label: "channels.cfgApiVersion", placeholder: "2024-03-01-preview" }],
  17: [{ key: "plugin", label: "channels.cfgPlugin" }],
  18: [{ key: "api_version", label: "channels.cfgSparkVersion", placeholder: "v3.5" }],
  21: [{ key: "library_id", label: "channels.cfgLibraryId", placeholder: "123456", required: true }],
  24: [{ key: "api_version", label: "channels.cfgApiVersion", placeholder: "v1beta" }],
  33: [
    { key: "region", label: "channels.cfgRegion", placeholder: "us-west-2", required: true },
    { key: "ak", label: "channels.cfgAk", placeholder: "AWS IAM Access Key", required: true },
    { key: "sk", label: "channels.cfgSk", placeholder: "AWS IAM Secret Key", required: true, secret: true },
  ],
  34: [{ key: "user_id", label: "channels.cfgUserId", required: true }],
  37: [{ key: "user_id", label: "channels.cfgAccountId", placeholder: "d8d7c61dbc334c32d3ced580e4bf42b4", required: true }],
  42: [
    { key: "region", label: "channels.cfgRegion", placeholder: "us-east5", required: true },
    { key: "vertex_ai_project_id", label: "channels.cfgVertexProject", required: true },
    { key: "vertex_ai_adc", label: "channels.cfgVertexAdc", placeholder: '{"type": "service_account", …}', required: true, multiline: true, secret: true },
  ],
};

/** Types whose credentials are the config fields, not a key (One API builds the key from them). */
export const KEY_FROM_CONFIG: Readonly<Record<number, readonly ConfigKey[]>> = {
  33: ["ak", "sk", "region"],
  42: ["region", "vertex_ai_project_id", "vertex_ai_adc"],
};

/** A key made of several parts, as the provider's console shows them. */
export const KEY_FORMATS: Readonly<Record<number, string>> = {
  15: "APIKey|SecretKey",
  18: "APPID|APISecret|APIKey",
  22: "APIKey-AppId",
  23: "AppId|SecretId|SecretKey",
};

/** A note shown under the type select. */
export const TYPE_NOTES: Readonly<Record<number, MessageKey>> = {
  3: "channels.noteAzure",
  34: "channels.noteCoze",
  40: "channels.noteDoubao",
};
