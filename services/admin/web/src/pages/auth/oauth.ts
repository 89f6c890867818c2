/** Where the login page's OAuth buttons send the browser (the provider's authorize page). */
import { api } from "@/api/client";
import type { Status } from "@/api/types";

export type Provider = "github" | "oidc" | "lark";

export function callbackUrl(provider: Provider): string {
  return `${window.location.origin}/oauth/${provider}`;
}

export async function startOAuth(provider: Provider, status: Status): Promise<void> {
  const state = await api.get<string>("/oauth/state");
  let url: URL;
  if (provider === "github") {
    url = new URL("https://github.com/login/oauth/authorize");
    url.searchParams.set("client_id", status.github_client_id);
    url.searchParams.set("scope", "user:email");
  } else if (provider === "oidc") {
    url = new URL(status.oidc_authorization_endpoint);
    url.searchParams.set("client_id", status.oidc_client_id);
    url.searchParams.set("redirect_uri", callbackUrl("oidc"));
    url.searchParams.set("response_type", "code");
    url.searchParams.set("scope", "openid profile email");
  } else {
    url = new URL("https://open.feishu.cn/open-apis/authen/v1/index");
    url.searchParams.set("app_id", status.lark_client_id);
    url.searchParams.set("redirect_uri", callbackUrl("lark"));
  }
  url.searchParams.set("state", state);
  window.location.assign(url.toString());
}
