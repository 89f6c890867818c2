"""The messages the account flows mail: a verification code and a password-reset link."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from services.admin.accounts.codes import CODE_TTL_MINUTES


@dataclass(frozen=True)
class Message:
    subject: str
    html: str


def verification_message(system_name: str, code: str) -> Message:
    name = escape(system_name)
    return Message(
        subject=f"{system_name}邮箱验证邮件",
        html=(
            f"<p>您好，您正在进行 {name} 邮箱验证。</p>"
            f"<p>您的验证码为：<strong>{escape(code)}</strong></p>"
            f"<p>验证码 {CODE_TTL_MINUTES} 分钟内有效，如果不是本人操作，请忽略本邮件。</p>"
        ),
    )


def password_reset_message(system_name: str, link: str) -> Message:
    name, href = escape(system_name), escape(link, quote=True)
    return Message(
        subject=f"{system_name}密码重置",
        html=(
            f"<p>您好，您正在进行 {name} 密码重置。</p>"
            f'<p>点击 <a href="{href}">此处</a> 重置密码。</p>'
            f"<p>如果链接无法点击，请将下面的链接复制到浏览器中打开：<br>{href}</p>"
            f"<p>重置链接 {CODE_TTL_MINUTES} 分钟内有效，如果不是本人操作，请忽略本邮件。</p>"
        ),
    )
