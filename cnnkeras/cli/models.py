"""Looking at a model: `predict`, `inspect`, `filters` and `feature-maps`.

Each takes a saved model by reference: a ``.keras`` path or an MLflow URI
(``runs:/<run id>/model``, ``models:/NAME/VERSION``, ``models:/NAME/latest``,
``models:/<model id>``); ``inspect``, ``filters`` and ``feature-maps`` also take a
registered architecture name (built untrained).
"""

from __future__ import annotations

from cnnkeras.cli.common import command

SAVED = "a .keras file, runs:/<run id>/model, models:/NAME/VERSION|latest or models:/<model id>"
NAME_OR_SAVED = f"registered architecture (built untrained), or a saved model: {SAVED}"


@command("predict", "top-k classes of your own images: a saved model, or ImageNet Inception v3")
def _predict(sub):
    parser = sub.add_parser("predict", help="top-k classes of your own images",
                            usage="cnnkeras predict MODEL IMAGE... | --imagenet IMAGE...")
    parser.add_argument("paths", nargs="+", metavar="MODEL IMAGE...",
                        help=f"the model ({SAVED}), then images")
    parser.add_argument("--imagenet", action="store_true",
                        help="no MODEL: ImageNet Inception v3, decode_predictions labels")
    parser.add_argument("--weights", help="with --imagenet: a local Inception v3 weights file")
    parser.add_argument("--class-index", help="with --imagenet: local imagenet_class_index.json")
    parser.add_argument("--top-k", type=int, default=5)

    def handler(args):
        from cnnkeras import predict

        if args.top_k < 1:
            raise ValueError(f"--top-k must be at least 1. Received: {args.top_k}")
        if (args.weights or args.class_index) and not args.imagenet:
            raise ValueError("--weights and --class-index go with --imagenet.")
        if args.imagenet:
            results = predict.predict_imagenet(args.paths, weights=args.weights or "imagenet",
                                               k=args.top_k, class_index=args.class_index)
        else:
            results = predict.predict_images(args.paths[0], args.paths[1:], k=args.top_k)
        print("\n".join(result.format() for result in results))

    return handler


@command("inspect", "layer table (shapes, parameters, receptive fields, FLOPs) and memory")
def _inspect(sub):
    parser = sub.add_parser("inspect", help="layer table and memory report of a model")
    parser.add_argument("model", metavar="NAME_OR_MODEL", help=NAME_OR_SAVED)
    parser.add_argument("--input-shape", help="e.g. 227,227,3 (default: the paper's size)")
    parser.add_argument("--num-classes", type=int)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--dtype", default="float32", help="float32, float16, bfloat16, float64")
    parser.add_argument("--optimizer", default="adam", help="adam, sgd, sgd_momentum, ...")

    def handler(args):
        from cnnkeras.inspection import report

        shape = report.parse_shape(args.input_shape) if args.input_shape else None
        model = report.resolve_model(args.model, input_shape=shape,
                                     num_classes=args.num_classes)
        report.print_inspection(model, batch_size=args.batch_size, dtype=args.dtype,
                                optimizer=args.optimizer)
        from cnnkeras.architectures.nn_variants import standard_twin_savings

        savings = standard_twin_savings(args.model, model)
        if savings:
            print(savings)

    return handler


@command("filters", "draw a model's first-layer filters as a PNG grid")
def _filters(sub):
    parser = sub.add_parser("filters", help="first-layer filters as a PNG grid")
    parser.add_argument("model", metavar="NAME_OR_MODEL", help=NAME_OR_SAVED)
    parser.add_argument("--layer", help="a convolution layer (default: the first); inside a "
                        "nested model by path, e.g. inception_v3/conv2d")
    parser.add_argument("--output", default="filters.png", help="PNG to write")

    def handler(args):
        from cnnkeras.inspection import report, viz

        model = report.resolve_model(args.model)
        untrained = not report.names_a_saved_model(args.model)
        if untrained:
            print(f"{args.model}: built from its name, so the filters are "
                  f"{viz.UNTRAINED_NOTE}; pass a saved model to see learned ones.")
        figure = viz.filter_figure(model, layer_name=args.layer, untrained=untrained)
        print(figure.get_suptitle())
        print(viz.save_png(figure, args.output))

    return handler


@command("feature-maps", "draw the feature maps of chosen layers for one image as a PNG")
def _feature_maps(sub):
    parser = sub.add_parser("feature-maps", help="feature maps of chosen layers for an image")
    parser.add_argument("model", metavar="NAME_OR_MODEL", help=NAME_OR_SAVED)
    parser.add_argument("--image", required=True,
                        help="image file, fed in the pixel range the model records "
                             "([0, 255] for every model cnnkeras builds)")
    parser.add_argument("--layers", nargs="+", help="layer names (default: low, mid, high); "
                        "inside a nested model by path, e.g. inception_v3/conv2d")
    parser.add_argument("--output", default="feature_maps.png", help="PNG to write")

    def handler(args):
        from cnnkeras.data.images import load_image
        from cnnkeras.inspection import report, viz
        from cnnkeras.inspection.graph import find_layer

        image = load_image(args.image)
        model, input_range = report.resolve(args.model)
        layers = [find_layer(model, name)[0] for name in args.layers or
                  viz.default_feature_layers(model)]
        print(f"{model.name}: feature maps of {', '.join(layers)}")
        print(viz.plot_feature_maps(model, image, layers, args.output, input_range=input_range))

    return handler
