"""What the client tests send and expect back: the service most calls name, an app_key no
server has issued, and the refusals every client must be able to read."""

USER = "App.QQ.UserImage"
# A well-formed app_key no server has issued: what a client configured with a stale key sends.
UNKNOWN_APP_KEY = "0123456789ABCDEF0123456789ABCDEF"
SIGN_ERROR = "客户端非法请求：签名错误"
UNKNOWN_APP = "客户端非法请求：非法app_key，请核对你所在的接口域名"
