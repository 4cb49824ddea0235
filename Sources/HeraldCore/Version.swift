/// Herald's release, as `herald --version`, the OpenAPI document and `herald_build_info` report it.
public enum HeraldVersion {
    public static let current = "0.1.0"
}
